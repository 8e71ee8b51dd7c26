"""verify of many datasets at once (a list, or folders of datasets), one after another or as
Ray tasks (shmpipe.tools.fanout): the verdicts come back in the datasets' order either way."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from shmpipe.tools.arguments import count
from shmpipe.tools.progress import NO_PROGRESS, ProgressBar
from shmpipe.tools.verify.reading import NotADatasetError
from shmpipe.tools.verify.report import VerifyReport
from shmpipe.tools.verify.verifier import verify_dataset


@dataclass
class VerifyEach:
    """verify_dataset of one dataset among many, picklable (for Ray): (report, ""), or (None,
    why) for a folder that is no dataset."""

    decode: bool = False
    progress: ProgressBar = NO_PROGRESS  # only in this process

    def __call__(self, root: Path) -> tuple[VerifyReport | None, str]:
        try:
            return verify_dataset(root, self.decode, self.progress), ""
        except NotADatasetError as error:
            return None, str(error)


def summary(results: list[tuple[VerifyReport | None, str]]) -> str:
    """One line: how many datasets are whole, have problems, or are no dataset."""
    whole = sum(1 for report, _ in results if report is not None and report.ok)
    broken = sum(1 for report, _ in results if report is not None and not report.ok)
    none = len(results) - whole - broken
    return (f"{count(len(results), 'dataset')}: {whole} whole, {broken} with problems, "
            f"{none} not a dataset")  # fmt: skip

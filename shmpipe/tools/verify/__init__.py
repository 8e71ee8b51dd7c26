"""`shmpipe verify`: an independent judgement of a LeRobot v3.0 dataset, frame for frame."""

from shmpipe.tools.verify.verifier import NotADatasetError as NotADatasetError
from shmpipe.tools.verify.verifier import VerifyReport as VerifyReport
from shmpipe.tools.verify.verifier import verify_dataset as verify_dataset

__all__ = ["NotADatasetError", "VerifyReport", "verify_dataset"]

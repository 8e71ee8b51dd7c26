"""Make torchvision 0.25.0 (built for CUDA torch 2.10) importable beside CPU torch 2.13.

`@torch.library.register_fake("torchvision::nms")` fails when torchvision's C++ ops did
not load (operator undefined). Replace that decorator with one that is a no-op unless
`torchvision.extension._has_ops()`. Idempotent.
"""
import pathlib
import sys

site = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else None
if site is None:
    import sysconfig
    site = pathlib.Path(sysconfig.get_paths()["purelib"])
path = site / "torchvision" / "_meta_registrations.py"
text = path.read_text()
old = '@torch.library.register_fake("torchvision::nms")'
new = '@_register_fake_if_ops("torchvision::nms")'
helper = '''

def _register_fake_if_ops(op_name):  # patched by .ci/lerobot_venv.sh
    def wrapper(fn):
        if torchvision.extension._has_ops():
            return torch.library.register_fake(op_name)(fn)
        return fn

    return wrapper

'''
if new in text:
    print(f"already patched: {path}")
    sys.exit(0)
if old not in text:
    sys.exit(f"pattern not found in {path}; torchvision version changed?")
text = text.replace(old, helper + new, 1)
path.write_text(text)
print(f"patched: {path}")

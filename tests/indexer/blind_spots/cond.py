from typing import TYPE_CHECKING
import sys
if TYPE_CHECKING:
    from os import PathLike
    class ProtoReader:
        def read_frame(self) -> bytes: ...
try:
    from _speedups import fast_scan
except ImportError:
    def fast_scan(data):
        return data
if sys.platform == "win32":
    def spawn_process(cmd):
        return 1
else:
    def spawn_process(cmd):
        return 2
def outer():
    class LocalThing:
        def local_method(self):
            pass
    def inner_helper():
        pass
    return LocalThing
class Config:
    if sys.version_info >= (3, 11):
        def modern_path(self):
            pass
    MAX_RETRIES = 3
DEFAULT_TIMEOUT = 30
handler = lambda x: x

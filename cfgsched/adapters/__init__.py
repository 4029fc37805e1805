"""Translation targets in torch: the exact scheduler, native compositions, the optimizer."""

#: MMEngine's version whose scheduler contract approx and codegen.mmengine were tested on.
MMENGINE_VERSION = "0.10.7"
#: Ultralytics' version whose trainer approx and codegen.ultralytics were tested on.
ULTRALYTICS_VERSION = "8.4.190"

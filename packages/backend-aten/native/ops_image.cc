// Image kernels.
#include "common.h"

namespace aten_addon {

void InitImage(Napi::Env env, Napi::Object exports) {}

}  // namespace aten_addon

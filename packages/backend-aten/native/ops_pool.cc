// Pool kernels.
#include "common.h"

namespace aten_addon {

void InitPool(Napi::Env env, Napi::Object exports) {}

}  // namespace aten_addon

// Reduce kernels.
#include "common.h"

namespace aten_addon {

void InitReduce(Napi::Env env, Napi::Object exports) {}

}  // namespace aten_addon

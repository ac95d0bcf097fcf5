// VisionTransformer family (in progress).
import SSFEngine
import SSFNN

let vitSpecs: [ModelSpec] = []

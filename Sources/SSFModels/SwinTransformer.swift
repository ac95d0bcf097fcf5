// SwinTransformer family (in progress).
import SSFEngine
import SSFNN

let swinSpecs: [ModelSpec] = []

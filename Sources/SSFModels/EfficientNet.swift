// EfficientNet family (in progress).
import SSFEngine
import SSFNN

let efficientNetSpecs: [ModelSpec] = []

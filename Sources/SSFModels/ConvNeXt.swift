// ConvNeXt family (in progress).
import SSFEngine
import SSFNN

let convNeXtSpecs: [ModelSpec] = []

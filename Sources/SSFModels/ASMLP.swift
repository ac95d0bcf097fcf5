// ASMLP family (in progress).
import SSFEngine
import SSFNN

let asMLPSpecs: [ModelSpec] = []

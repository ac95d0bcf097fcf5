// Fuzz target: training configuration YAML (config.yaml and --config files).
import Foundation
import FuzzSupport
import SSFTraining

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    let text = String(decoding: bytes, as: UTF8.self)
    if let overrides = try? TrainingConfig.overrides(yaml: text, path: "config.yaml") {
        _ = try? TrainingConfig.resolved(preset: nil, configFile: nil, overrides: overrides)
    }
    return 0
}

exit(runFuzzer(fuzzOneInput))

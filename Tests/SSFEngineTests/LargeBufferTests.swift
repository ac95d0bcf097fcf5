// Large tensor buffers: mapped on their own, reused by size after release, counted as live bytes.
import XCTest
@testable import SSFEngine

final class LargeBufferTests: XCTestCase {
    func testLargeBuffersAreReusedBySizeAndCounted() throws {
        #if os(Linux)
        try XCTSkipIf(LargeBuffers.cacheLimit < 8 << 20, "SSF_BUFFER_CACHE_MIB leaves no room for reuse")
        let count = (3 << 20) / 4 + 17   // just over 3 MiB: mapped, rounded up to the granule
        XCTAssertTrue(LargeBuffers.serves(count * 4))
        XCTAssertFalse(LargeBuffers.serves(4096))
        let before = StorageStats.liveBytes
        var first: Tensor? = Tensor.full([count], 2.5)
        XCTAssertEqual(StorageStats.liveBytes - before, count * 4)
        XCTAssertEqual(first!.scalars[count - 1], 2.5)
        let address = first!.pointer
        first = nil
        XCTAssertEqual(StorageStats.liveBytes, before)
        // The same size again comes from the cache: the same mapping, still writable.
        var second = Tensor(uninitializedShape: [count])
        XCTAssertEqual(UnsafeRawPointer(second.pointer), UnsafeRawPointer(address))
        second.mutablePointer().update(repeating: -1, count: count)
        XCTAssertEqual(second.scalars.reduce(0, +), -Float(count))
        // A size in another granule does not take it.
        let other = Tensor.full([count + (1 << 16)], 1)
        XCTAssertNotEqual(UnsafeRawPointer(other.pointer), UnsafeRawPointer(second.pointer))
        #else
        throw XCTSkip("large buffers are mapped separately only on Linux")
        #endif
    }

    /// Freed buffers stay cached beyond the fixed limit while live and cached bytes together stay
    /// within the peak of live tensors: a step larger than the limit reuses all of its mappings.
    func testCacheHoldsAStepLargerThanTheFixedLimit() throws {
        #if os(Linux)
        try XCTSkipIf(LargeBuffers.cacheLimitIsFixed, "SSF_BUFFER_CACHE_MIB makes the limit a fixed one")
        LargeBuffers.releaseCache()
        defer { LargeBuffers.releaseCache() }
        // Five buffers of a third of the limit each (mapped, never touched: no resident memory).
        let count = LargeBuffers.cacheLimit / 4 / 3 + 1
        var step = (0..<5).map { _ in TensorStorage(uninitializedCount: count) }
        let mappings = Set(step.map { UnsafeRawPointer($0.pointer) })
        step.removeAll()
        XCTAssertGreaterThan(LargeBuffers.cache.withLock { $0.bytes }, LargeBuffers.cacheLimit, "all five are cached")
        let next = (0..<5).map { _ in TensorStorage(uninitializedCount: count) }
        XCTAssertEqual(Set(next.map { UnsafeRawPointer($0.pointer) }), mappings, "the next step maps nothing new")
        #else
        throw XCTSkip("large buffers are mapped separately only on Linux")
        #endif
    }

    /// With no cached mapping of the size asked for, the nearest one (at most twice the size) is
    /// resized instead of mapping fresh memory: only the bytes it gains are new.
    func testANearbySizeResizesACachedMapping() throws {
        #if os(Linux)
        try XCTSkipIf(LargeBuffers.cacheLimit < 32 << 20, "SSF_BUFFER_CACHE_MIB leaves no room for reuse")
        LargeBuffers.releaseCache()
        defer { LargeBuffers.releaseCache() }
        let mib = (1 << 20) / 4   // floats per MiB
        do { _ = TensorStorage(count: 4 * mib, repeating: 3) }   // freed at once: cached
        let before = StorageStats.freshlyMappedBytes
        // 3 MiB from the cached 4 MiB mapping: shrunk, nothing mapped.
        var b: TensorStorage? = TensorStorage(uninitializedCount: 3 * mib)
        XCTAssertEqual(StorageStats.freshlyMappedBytes, before)
        b!.pointer[0] = 1; b!.pointer[3 * mib - 1] = 1
        b = nil
        // 5 MiB from the cached 3 MiB one: grown, 2 MiB new.
        var c: TensorStorage? = TensorStorage(count: 5 * mib, repeating: 7)
        XCTAssertEqual(StorageStats.freshlyMappedBytes - before, 2 << 20)
        XCTAssertEqual(c!.pointer[5 * mib - 1], 7)
        c = nil
        // 1.5 MiB does not take the cached 5 MiB (more than twice its size): mapped anew.
        let d = TensorStorage(uninitializedCount: 3 * mib / 2)
        XCTAssertEqual(StorageStats.freshlyMappedBytes - before, (2 << 20) + (3 << 19))
        XCTAssertEqual(LargeBuffers.cache.withLock { $0.bytes }, 5 << 20, "the 5 MiB mapping stays cached")
        withExtendedLifetime(d) {}
        #else
        throw XCTSkip("large buffers are mapped separately only on Linux")
        #endif
    }
}

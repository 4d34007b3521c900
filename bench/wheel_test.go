package bench

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkWheelLimitMap is the limit beside schedule's wheel benchmarks
// (BenchmarkWheelInsert/Remove/Advance at 1,000,000 pending, which bench/run
// runs): a Go map of 1,000,000 ids to due times, the wheel's own index,
// with one delete + insert per op. The wheel does that plus linking the
// node into its slot list.
func BenchmarkWheelLimitMap(b *testing.B) {
	const n = 1_000_000
	m := make(map[uint64]int64, n)
	rng := rand.New(rand.NewPCG(1, 2))
	for id := range uint64(n) {
		m[id] = rng.Int64()
	}
	keys := make([]uint64, 4096)
	for i := range keys {
		keys[i] = rng.Uint64N(n)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		k := keys[i%len(keys)]
		delete(m, k)
		m[k] = int64(i)
	}
}

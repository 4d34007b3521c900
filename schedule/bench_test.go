package schedule

import (
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

const benchN = 1_000_000

// filled returns a 1s-tick wheel holding benchN entries due uniformly over
// the next 30 days, the shape of a large install's pending follow-ups.
func filled(b *testing.B) (*Wheel, *rand.Rand) {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	w := NewWheel(t0, time.Second)
	for id := range uint64(benchN) {
		w.Insert(id, t0.Add(time.Duration(rng.Int64N(int64(30*24*time.Hour)))))
	}
	return w, rng
}

// BenchmarkWheelInsert moves entries of a full wheel to new due times
// (Insert replacing an existing id: remove, place).
func BenchmarkWheelInsert(b *testing.B) {
	w, rng := filled(b)
	dues := make([]time.Time, 4096)
	for i := range dues {
		dues[i] = t0.Add(time.Duration(rng.Int64N(int64(30 * 24 * time.Hour))))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		w.Insert(uint64(i%benchN), dues[i%len(dues)])
	}
	b.StopTimer()
	if w.Len() != benchN {
		b.Fatalf("Len() = %d", w.Len())
	}
}

// BenchmarkWheelRemove removes entries from a full wheel, refilling it
// (untimed) when empty.
func BenchmarkWheelRemove(b *testing.B) {
	w, rng := filled(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		id := uint64(i % benchN)
		if !w.Remove(id) {
			b.Fatalf("Remove(%d) = false", id)
		}
		if id == benchN-1 {
			b.StopTimer()
			for id := range uint64(benchN) {
				w.Insert(id, t0.Add(time.Duration(rng.Int64N(int64(30*24*time.Hour)))))
			}
			b.StartTimer()
		}
	}
}

// BenchmarkWheelAdvance advances a full wheel one second per op, in steady
// state: each fired entry is put back 30 days ahead, so about 0.4 entries
// fire per op and a million stay pending.
func BenchmarkWheelAdvance(b *testing.B) {
	w, _ := filled(b)
	now := t0
	var n int
	refire := func(id uint64, due time.Time) {
		n++
		w.Insert(id, due.Add(30*24*time.Hour))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		now = now.Add(time.Second)
		w.Advance(now, refire)
	}
	b.StopTimer()
	if w.Len() != benchN {
		b.Fatalf("Len() = %d", w.Len())
	}
	b.ReportMetric(float64(n)/float64(b.N), "fired/op")
}

// BenchmarkWheelMemory reports the heap cost of one pending entry in a
// wheel of a million.
func BenchmarkWheelMemory(b *testing.B) {
	var perEntry float64
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		w := NewWheel(t0, time.Second)
		for id := range uint64(benchN) {
			w.Insert(id, t0.Add(time.Duration(id)*time.Second))
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perEntry = float64(after.HeapAlloc-before.HeapAlloc) / benchN
		runtime.KeepAlive(w)
	}
	b.ReportMetric(perEntry, "B/entry")
}

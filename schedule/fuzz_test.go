package schedule

import (
	"encoding/binary"
	"slices"
	"testing"
	"time"
)

// FuzzWheel reads operations from the input and checks a tiny wheel (2 bits,
// 2 levels: cascades and overflow on almost every step) against the model.
// Each operation is 3 bytes: kind, id, amount.
func FuzzWheel(f *testing.F) {
	f.Add([]byte{0, 1, 10, 3, 0, 10})
	f.Add([]byte{0, 1, 200, 0, 2, 17, 0, 3, 16, 3, 0, 255, 3, 0, 255})
	f.Add([]byte{0, 1, 5, 1, 1, 0, 2, 0, 0, 3, 0, 9, 4, 0, 3})
	f.Add(binary.BigEndian.AppendUint64(nil, 0x0001ff0302ff0400))
	f.Fuzz(func(t *testing.T, data []byte) {
		tick := time.Second
		w := newWheel(t0, tick, 2, 2)
		m := model{}
		now := t0
		for len(data) >= 3 {
			kind, id, amt := data[0]%5, uint64(data[1]%16), time.Duration(data[2])
			data = data[3:]
			switch kind {
			case 0: // insert, due from 20 ticks ago to 235 ahead
				due := now.Add((amt-20)*tick + amt*time.Millisecond)
				w.Insert(id, due)
				m[id] = due
			case 1:
				_, want := m[id]
				if got := w.Remove(id); got != want {
					t.Fatalf("Remove(%d) = %v, want %v", id, got, want)
				}
				delete(m, id)
			case 2:
				want, wok := m.next()
				got, gok := w.Next()
				if gok != wok || !got.Equal(want) {
					t.Fatalf("Next() = %v, %v; want %v, %v", got, gok, want, wok)
				}
			case 3, 4:
				if kind == 3 {
					now = now.Add(amt * tick / 4)
				} else {
					now = now.Add(-amt * tick / 16)
				}
				want := m.fire(now)
				var got []fired
				w.Advance(now, func(id uint64, due time.Time) { got = append(got, fired{due.Sub(t0).Nanoseconds(), id}) })
				if !slices.Equal(got, want) {
					t.Fatalf("Advance(t0+%v) fired %v, want %v", now.Sub(t0), got, want)
				}
			}
			if w.Len() != len(m) {
				t.Fatalf("Len() = %d, want %d", w.Len(), len(m))
			}
		}
		checkWheel(t, w)
	})
}

package schedule

import (
	"cmp"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

var seedFlag = flag.Uint64("seed", 0, "seed for the wheel model simulation (0 = from the clock)")

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// op is one step of a wheel script.
type op struct {
	do   string        // insert, remove, advance, next, len
	id   uint64        // insert, remove
	at   time.Duration // insert: due; advance: now; next: want (-1 = none); all relative to t0
	want []uint64      // advance: fired ids in order; remove: {1} if it should report true; len: {n}
}

func ins(id uint64, at time.Duration) op { return op{do: "insert", id: id, at: at} }
func rem(id uint64, ok bool) op {
	if ok {
		return op{do: "remove", id: id, want: []uint64{1}}
	}
	return op{do: "remove", id: id}
}
func adv(at time.Duration, ids ...uint64) op { return op{do: "advance", at: at, want: ids} }
func next(at time.Duration) op               { return op{do: "next", at: at} }

// none is next's argument for an empty wheel.
const none = time.Duration(math.MinInt64)

func length(n uint64) op { return op{do: "len", want: []uint64{n}} }

func runScript(t *testing.T, w *Wheel, script []op) {
	t.Helper()
	for i, o := range script {
		switch o.do {
		case "insert":
			w.Insert(o.id, t0.Add(o.at))
		case "remove":
			if got := w.Remove(o.id); got != (len(o.want) == 1) {
				t.Fatalf("step %d: Remove(%d) = %v", i, o.id, got)
			}
		case "advance":
			var got []uint64
			w.Advance(t0.Add(o.at), func(id uint64, due time.Time) {
				if due.After(t0.Add(o.at)) {
					t.Errorf("step %d: fired %d due %v after now %v", i, id, due, t0.Add(o.at))
				}
				got = append(got, id)
			})
			if !slices.Equal(got, o.want) {
				t.Fatalf("step %d: Advance(t0+%v) fired %v, want %v", i, o.at, got, o.want)
			}
		case "next":
			got, ok := w.Next()
			switch {
			case o.at == none && ok:
				t.Fatalf("step %d: Next() = %v, want none", i, got)
			case o.at != none && (!ok || !got.Equal(t0.Add(o.at))):
				t.Fatalf("step %d: Next() = %v, %v; want t0+%v", i, got, ok, o.at)
			}
		case "len":
			if got := w.Len(); got != int(o.want[0]) {
				t.Fatalf("step %d: Len() = %d, want %d", i, got, o.want[0])
			}
		}
	}
}

func TestWheel(t *testing.T) {
	const (
		s   = time.Second
		ms  = time.Millisecond
		h   = time.Hour
		day = 24 * time.Hour
	)
	tests := []struct {
		name   string
		b      uint // 0 = NewWheel's geometry
		levels int
		script []op
	}{
		{name: "empty", script: []op{next(none), length(0), adv(day), next(none)}},
		{name: "insert and fire", script: []op{
			ins(1, 10*s), next(10 * s), adv(9*s + 999*ms), adv(10*s, 1), length(0), next(none),
		}},
		{name: "fires once", script: []op{ins(1, 10*s), adv(11*s, 1), adv(20 * s)}},
		{name: "remove", script: []op{
			ins(1, 10*s), ins(2, 20*s), rem(1, true), rem(1, false), rem(3, false), next(20 * s), length(1), adv(30*s, 2),
		}},
		{name: "replace moves later", script: []op{
			ins(1, 10*s), ins(1, 30*s), length(1), next(30 * s), adv(20 * s), adv(30*s, 1),
		}},
		{name: "replace moves earlier", script: []op{
			ins(1, 30*s), next(30 * s), ins(1, 5*s), next(5 * s), adv(5*s, 1), adv(40 * s),
		}},
		{name: "due order then id", script: []op{
			ins(5, 3*s), ins(4, 1*s), ins(3, 2*s), ins(2, 1*s), ins(1, 2*day), adv(3*day, 2, 4, 3, 5, 1),
		}},
		{name: "sub-tick precision", script: []op{
			ins(1, 10*s+700*ms), ins(2, 10*s+200*ms), adv(10*s+500*ms, 2), next(10*s + 700*ms), adv(10*s + 699*ms), adv(10*s+700*ms, 1),
		}},
		{name: "past due fires on next advance", script: []op{
			adv(h), ins(1, -day), ins(2, 30*time.Minute), ins(3, h), next(-day), adv(h, 1, 2, 3),
		}},
		{name: "past due before start", script: []op{ins(1, -time.Hour), adv(-2 * time.Hour), adv(0, 1)}},
		{name: "tick boundaries", script: []op{
			ins(1, 256*s), ins(2, 255*s), ins(3, 65536*s), ins(4, 65535*s), ins(5, 65537*s),
			adv(255*s, 2), adv(256*s, 1), adv(65535*s, 4), adv(65536*s, 3), adv(65537*s, 5),
		}},
		{name: "exact boundaries one big step", script: []op{
			ins(1, 256*s), ins(2, 65536*s), ins(3, 1<<24*s), adv(1<<24*s, 1, 2, 3),
		}},
		{name: "insert mid-wheel then cascade", script: []op{
			adv(300 * s), ins(1, 300*s+65536*s), ins(2, 301*s), adv(301*s, 2), next(300*s + 65536*s),
			adv(300*s + 65535*s), adv(300*s+65536*s, 1),
		}},
		{name: "time going backwards fires nothing new", script: []op{
			ins(1, 10*s), adv(5 * s), adv(1 * s), adv(10*s, 1),
		}},
		{name: "far future overflow", b: 2, levels: 2, script: []op{ // span 16 ticks
			ins(1, 100*s), ins(2, 17*s), ins(3, 3*s), next(3 * s), adv(3*s, 3), next(17 * s),
			adv(16 * s), adv(17*s, 2), next(100 * s), adv(99 * s), adv(100*s, 1), length(0),
		}},
		{name: "overflow removed min", b: 2, levels: 2, script: []op{
			ins(1, 50*s), ins(2, 80*s), rem(1, true), next(80 * s), adv(79 * s), adv(80*s, 2),
		}},
		{name: "overflow at exactly span", b: 2, levels: 2, script: []op{
			ins(1, 16*s), ins(2, 15*s), ins(3, 32*s), adv(15*s, 2), adv(16*s, 1), adv(31 * s), adv(32*s, 3),
		}},
		{name: "one level wheel", b: 3, levels: 1, script: []op{
			ins(1, 7*s), ins(2, 8*s), ins(3, 9*s), adv(7*s, 1), adv(8*s, 2), adv(1000*s, 3),
		}},
		{name: "years ahead", script: []op{
			ins(1, 3*365*day), ins(2, 290*365*day), next(3 * 365 * day), adv(3*365*day, 1), adv(291*365*day, 2),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := NewWheel(t0, time.Second)
			if tc.b != 0 {
				w = newWheel(t0, time.Second, tc.b, tc.levels)
			}
			runScript(t, w, tc.script)
		})
	}
}

func TestWheelFireMayInsert(t *testing.T) {
	w := NewWheel(t0, time.Second)
	w.Insert(1, t0.Add(time.Second))
	w.Insert(2, t0.Add(2*time.Second))
	var got []uint64
	w.Advance(t0.Add(5*time.Second), func(id uint64, due time.Time) {
		got = append(got, id)
		w.Insert(id+10, due) // already due: fires on the next Advance
		w.Remove(2)          // already removed for firing: still fired
	})
	w.Advance(t0.Add(5*time.Second), func(id uint64, _ time.Time) { got = append(got, id) })
	if want := []uint64{1, 2, 11, 12}; !slices.Equal(got, want) {
		t.Fatalf("fired %v, want %v", got, want)
	}
	if w.Len() != 0 {
		t.Fatalf("Len() = %d after all fired", w.Len())
	}
}

func TestWheelDefaultsAndDue(t *testing.T) {
	w := NewWheel(t0, 0) // 1s
	w.Insert(7, t0.Add(90*time.Minute))
	if due, ok := w.Due(7); !ok || !due.Equal(t0.Add(90*time.Minute)) {
		t.Fatalf("Due(7) = %v, %v", due, ok)
	}
	if _, ok := w.Due(8); ok {
		t.Fatal("Due(8) found")
	}
	w.Advance(t0.Add(2*time.Hour), nil) // nil fire: entries are dropped, no panic
	if w.Len() != 0 {
		t.Fatal("entry survived Advance with nil fire")
	}
}

// model is the obviously correct reference: a map scanned in full.
type model map[uint64]time.Time

func (m model) fire(now time.Time) []fired {
	var out []fired
	for id, due := range m {
		if !due.After(now) {
			out = append(out, fired{due.Sub(t0).Nanoseconds(), id})
			delete(m, id)
		}
	}
	slices.SortFunc(out, func(a, b fired) int {
		if c := cmp.Compare(a.due, b.due); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	return out
}

func (m model) next() (time.Time, bool) {
	var best time.Time
	ok := false
	for _, due := range m {
		if !ok || due.Before(best) {
			best, ok = due, true
		}
	}
	return best, ok
}

// TestWheelModel runs random operations against the wheel and the model
// and checks that every Advance fires the same entries in the same order,
// and that Next and Len agree. Tiny geometries make cascades and overflow
// frequent. Reproduce a failure with -seed.
func TestWheelModel(t *testing.T) {
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -seed=%d)", seed, seed)
	geoms := []struct {
		b      uint
		levels int
		tick   time.Duration
	}{
		{1, 1, time.Second}, {2, 2, time.Second}, {3, 3, 10 * time.Millisecond},
		{4, 2, time.Second}, {8, 4, time.Second}, {6, 3, time.Minute},
	}
	steps := 20000
	if testing.Short() {
		steps = 2000
	}
	for gi, g := range geoms {
		t.Run(fmt.Sprintf("b%d_l%d_%v", g.b, g.levels, g.tick), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, uint64(gi)))
			w := newWheel(t0, g.tick, g.b, g.levels)
			m := model{}
			now := t0
			span := time.Duration(1<<(g.b*uint(g.levels))) * g.tick
			span = min(span, 400*24*time.Hour) // keep 5*span within a Duration
			randDue := func() time.Time {
				switch rng.IntN(6) {
				case 0: // in the past
					return now.Add(-time.Duration(rng.Int64N(int64(3*span) + 1)))
				case 1: // on a tick boundary
					return t0.Add(now.Sub(t0).Truncate(g.tick) + time.Duration(rng.IntN(40))*g.tick)
				case 2: // far beyond the top level
					return now.Add(span + time.Duration(rng.Int64N(int64(5*span))))
				case 3: // exactly now
					return now
				default:
					return now.Add(time.Duration(rng.Int64N(int64(2 * span))))
				}
			}
			for step := range steps {
				id := uint64(rng.IntN(200))
				switch r := rng.IntN(100); {
				case r < 45:
					due := randDue()
					w.Insert(id, due)
					m[id] = due
				case r < 60:
					_, want := m[id]
					if got := w.Remove(id); got != want {
						t.Fatalf("step %d: Remove(%d) = %v, want %v", step, id, got, want)
					}
					delete(m, id)
				case r < 70:
					want, wok := m.next()
					got, gok := w.Next()
					if gok != wok || !got.Equal(want) {
						t.Fatalf("step %d: Next() = %v, %v; want %v, %v", step, got, gok, want, wok)
					}
				default:
					switch rng.IntN(8) {
					case 0:
						now = now.Add(-time.Duration(rng.Int64N(int64(span)))) // clock went back
					case 1:
						if now.Sub(t0) < 50*365*24*time.Hour { // stay far from Duration saturation
							now = now.Add(time.Duration(rng.Int64N(int64(4 * span)))) // long jump
						}
					case 2:
						now = t0.Add(now.Sub(t0).Truncate(g.tick) + g.tick) // next boundary
					default:
						now = now.Add(time.Duration(rng.Int64N(int64(3 * g.tick))))
					}
					want := m.fire(now)
					var got []fired
					w.Advance(now, func(id uint64, due time.Time) { got = append(got, fired{due.Sub(t0).Nanoseconds(), id}) })
					if !slices.Equal(got, want) {
						t.Fatalf("step %d: Advance(%v) fired %v, want %v", step, now.Sub(t0), got, want)
					}
				}
				if w.Len() != len(m) {
					t.Fatalf("step %d: Len() = %d, want %d", step, w.Len(), len(m))
				}
			}
			checkWheel(t, w)
		})
	}
}

// checkWheel verifies the internal structure: every indexed node is on the
// list its tick belongs to, bitmaps match the slot lists, free nodes are
// off every list.
func checkWheel(t *testing.T, w *Wheel) {
	t.Helper()
	seen := 0
	for li, head := range w.heads {
		prev := nilIdx
		for i := head; i != nilIdx; i = w.nodes[i].next {
			n := w.nodes[i]
			if n.list != int32(li) || n.prev != prev {
				t.Fatalf("node %d: list %d prev %d, want list %d prev %d", i, n.list, n.prev, li, prev)
			}
			if w.index[n.id] != i {
				t.Fatalf("node %d (id %d) not indexed", i, n.id)
			}
			e := w.tickOf(n.due)
			switch {
			case int32(li) == w.ready:
				if e > w.cur {
					t.Fatalf("ready node %d has tick %d > cur %d", i, e, w.cur)
				}
			case int32(li) == w.over:
				if e < w.ovMin {
					t.Fatalf("overflow node %d tick %d below ovMin %d", i, e, w.ovMin)
				}
			default:
				if e <= w.cur {
					t.Fatalf("wheel node %d has tick %d <= cur %d", i, e, w.cur)
				}
			}
			prev = i
			seen++
		}
		if li < int(w.ready) {
			l, slot := li>>w.b, li&int(w.mask)
			occ := w.occ[l*w.words+slot>>6]&(1<<(uint(slot)&63)) != 0
			if occ != (head != nilIdx) {
				t.Fatalf("slot %d/%d: bitmap %v, list empty %v", l, slot, occ, head == nilIdx)
			}
		}
	}
	if seen != len(w.index) {
		t.Fatalf("%d nodes on lists, %d indexed", seen, len(w.index))
	}
}

package schedule

import (
	"cmp"
	"math"
	"math/bits"
	"slices"
	"time"
)

// Wheel geometry used by NewWheel: 4 levels of 256 slots cover 2^32 ticks
// (136 years at 1s); anything further goes to the overflow list.
const (
	defaultBits   = 8
	defaultLevels = 4
)

const nilIdx int32 = -1

// node is one pending entry. 32 bytes, no pointers, so the node array is
// not scanned by the garbage collector.
type node struct {
	due  int64  // nanoseconds since the wheel's start (saturating)
	id   uint64 // follow-up id
	prev int32  // index in nodes, nilIdx at a list's head
	next int32  // index in nodes, nilIdx at a list's tail; free-list link when free
	list int32  // which list holds the node; nilIdx when free
}

// Wheel is a hierarchical timing wheel of pending steps keyed by follow-up
// id (Varghese & Lauck; the shape of the classic Linux timer wheel).
//
// Time is counted in ticks since start. An entry due at tick e sits on
// level l when 2^(b*l) <= e-cur < 2^(b*(l+1)), in slot (e >> b*l) mod 2^b,
// and moves down a level when the wheel reaches that slot's start; entries
// too far ahead for the top level wait in an overflow list, re-examined when
// the earliest of them comes within reach. Entries whose tick has been
// reached sit in the ready list and fire once their exact due time has
// passed, so a tick only bounds work, never precision.
//
// Insert and Remove are O(1) (map id -> node index, doubly linked slot
// lists in one pointer-free array); Advance is amortised O(1) per entry plus
// O(levels) per occupied slot it passes, skipping empty stretches with
// per-level occupancy bitmaps. A Wheel is not safe for concurrent use.
type Wheel struct {
	start time.Time // tick 0; monotonic reading stripped
	tick  int64     // ns per tick
	b     uint      // bits per level
	nl    int       // number of levels
	mask  int64     // 2^b - 1
	span  int64     // ticks covered by all levels: 2^(b*nl)
	words int       // uint64 words per level bitmap

	cur   int64  // current tick: every entry with tick <= cur is in the ready list
	nodes []node // entries and free nodes
	free  int32  // head of the free-node list
	index map[uint64]int32
	heads []int32  // list heads: nl*2^b slots, then ready, then overflow
	occ   []uint64 // occupancy bitmaps of the slots, nl*words words
	ready int32    // list number of the ready list
	over  int32    // list number of the overflow list
	ovMin int64    // lower bound of the overflow entries' ticks

	// Next's cache: valid says nextDue/nextOK are exact.
	nextValid bool
	nextOK    bool
	nextDue   int64

	batch []fired // Advance's scratch
}

type fired struct {
	due int64
	id  uint64
}

// NewWheel returns an empty wheel whose tick 0 is start. tick <= 0 means 1s.
func NewWheel(start time.Time, tick time.Duration) *Wheel {
	return newWheel(start, tick, defaultBits, defaultLevels)
}

// newWheel lets tests build tiny wheels that cascade and overflow often.
// bits in [1, 12], levels in [1, 6] and bits*levels <= 40.
func newWheel(start time.Time, tick time.Duration, b uint, levels int) *Wheel {
	if tick <= 0 {
		tick = time.Second
	}
	b = min(max(b, 1), 12)
	levels = min(max(levels, 1), 6)
	for b*uint(levels) > 40 {
		levels--
	}
	size := 1 << b
	w := &Wheel{
		start: start.Round(0),
		tick:  int64(tick),
		b:     b,
		nl:    levels,
		mask:  int64(size - 1),
		span:  1 << (b * uint(levels)),
		words: (size + 63) / 64,
		free:  nilIdx,
		index: make(map[uint64]int32),
	}
	w.heads = make([]int32, levels*size+2)
	for i := range w.heads {
		w.heads[i] = nilIdx
	}
	w.ready = int32(levels * size)
	w.over = w.ready + 1
	w.occ = make([]uint64, levels*w.words)
	w.nextValid = true // empty: nothing is due
	return w
}

// Len returns the number of pending entries.
func (w *Wheel) Len() int { return len(w.index) }

// offset converts t to saturated nanoseconds since start.
func (w *Wheel) offset(t time.Time) int64 {
	return int64(t.Sub(w.start)) // Sub saturates at ±292 years
}

func (w *Wheel) timeOf(ns int64) time.Time { return w.start.Add(time.Duration(ns)) }

// tickOf is floor(ns / tick).
func (w *Wheel) tickOf(ns int64) int64 {
	q := ns / w.tick
	if ns%w.tick < 0 {
		q--
	}
	return q
}

// Due returns the due time of id's entry.
func (w *Wheel) Due(id uint64) (time.Time, bool) {
	i, ok := w.index[id]
	if !ok {
		return time.Time{}, false
	}
	return w.timeOf(w.nodes[i].due), true
}

// Insert adds an entry for id due at due, replacing id's existing entry.
// An entry due at or before the wheel's current time fires on the next
// Advance. Due times more than ~292 years from the wheel's start are
// clamped.
func (w *Wheel) Insert(id uint64, due time.Time) {
	w.Remove(id)
	i := w.alloc()
	n := &w.nodes[i]
	n.id = id
	n.due = w.offset(due)
	w.index[id] = i
	w.place(i)
	if w.nextValid && (!w.nextOK || n.due < w.nextDue) {
		w.nextOK, w.nextDue = true, n.due
	}
}

// Remove deletes id's entry and reports whether there was one.
func (w *Wheel) Remove(id uint64) bool {
	i, ok := w.index[id]
	if !ok {
		return false
	}
	if w.nextValid && w.nextOK && w.nodes[i].due == w.nextDue {
		w.nextValid = false
	}
	w.unlink(i)
	delete(w.index, id)
	w.release(i)
	return true
}

func (w *Wheel) alloc() int32 {
	if w.free != nilIdx {
		i := w.free
		w.free = w.nodes[i].next
		return i
	}
	if len(w.nodes) >= math.MaxInt32 {
		// Two billion pending entries would need ~150 GB; not reachable.
		panic("schedule: wheel full")
	}
	w.nodes = append(w.nodes, node{})
	return int32(len(w.nodes) - 1)
}

func (w *Wheel) release(i int32) {
	w.nodes[i] = node{list: nilIdx, prev: nilIdx, next: w.free}
	w.free = i
}

// place puts node i, not on any list, where its tick belongs relative to cur.
func (w *Wheel) place(i int32) {
	n := &w.nodes[i]
	e := w.tickOf(n.due)
	delta := e - w.cur
	switch {
	case delta <= 0:
		w.push(w.ready, i)
		return
	case delta >= w.span:
		if w.heads[w.over] == nilIdx || e < w.ovMin {
			w.ovMin = e
		}
		w.push(w.over, i)
		return
	}
	// Level l holds deltas in [2^(b*l), 2^(b*(l+1))).
	l := (bits.Len64(uint64(delta)) - 1) / int(w.b)
	slot := (e >> (w.b * uint(l))) & w.mask
	li := int32(l)<<w.b | int32(slot)
	w.push(li, i)
	w.occ[l*w.words+int(slot>>6)] |= 1 << (uint(slot) & 63)
}

func (w *Wheel) push(li, i int32) {
	n := &w.nodes[i]
	n.list = li
	n.prev = nilIdx
	n.next = w.heads[li]
	if n.next != nilIdx {
		w.nodes[n.next].prev = i
	}
	w.heads[li] = i
}

func (w *Wheel) unlink(i int32) {
	n := &w.nodes[i]
	if n.prev != nilIdx {
		w.nodes[n.prev].next = n.next
	} else {
		w.heads[n.list] = n.next
		if n.next == nilIdx && n.list < w.ready {
			w.clearOcc(n.list)
		}
	}
	if n.next != nilIdx {
		w.nodes[n.next].prev = n.prev
	}
	n.prev, n.next, n.list = nilIdx, nilIdx, nilIdx
}

func (w *Wheel) clearOcc(li int32) {
	l := int(li >> w.b)
	slot := int(li) & int(w.mask)
	w.occ[l*w.words+slot>>6] &^= 1 << (uint(slot) & 63)
}

// nextSlot returns the smallest k in [1, 2^b] such that level l's slot at
// offset k from the current one is occupied, or 0. Entries in that slot move
// down (or, on level 0, become ready) at tick ((cur >> b*l) + k) << b*l.
func (w *Wheel) nextSlot(l int) int64 {
	bm := w.occ[l*w.words : (l+1)*w.words]
	size := w.mask + 1
	idx := (w.cur >> (w.b * uint(l))) & w.mask
	if p := findSet(bm, idx+1, size); p >= 0 {
		return p - idx
	}
	if p := findSet(bm, 0, idx+1); p >= 0 {
		return p + size - idx
	}
	return 0
}

// findSet returns the first set bit in [from, to), or -1.
func findSet(bm []uint64, from, to int64) int64 {
	for from < to {
		wi := from >> 6
		if word := bm[wi] >> (uint(from) & 63); word != 0 {
			if p := from + int64(bits.TrailingZeros64(word)); p < to {
				return p
			}
			return -1
		}
		from = (wi + 1) << 6
	}
	return -1
}

// slotTick is the tick at which level l's slot at offset k is processed.
func (w *Wheel) slotTick(l int, k int64) int64 {
	s := w.b * uint(l)
	return ((w.cur >> s) + k) << s
}

// Advance moves the wheel to now and calls fire for every entry due at or
// before now, after removing it, in (due, id) order. fire may Insert or
// Remove (an entry inserted already due fires on the next Advance) but must
// not call Advance. A now earlier than a previous one moves nothing but
// still fires what is due by it.
func (w *Wheel) Advance(now time.Time, fire func(id uint64, due time.Time)) {
	n := w.offset(now)
	target := w.tickOf(n)
	for w.cur < target {
		next := target
		for l := range w.nl {
			if k := w.nextSlot(l); k > 0 {
				next = min(next, w.slotTick(l, k))
			}
		}
		if w.heads[w.over] != nilIdx {
			next = min(next, max(w.ovMin-w.span+1, w.cur+1))
		}
		w.cur = next
		w.expire()
	}

	batch := w.batch[:0]
	for i := w.heads[w.ready]; i != nilIdx; i = w.nodes[i].next {
		if nd := &w.nodes[i]; nd.due <= n {
			batch = append(batch, fired{nd.due, nd.id})
		}
	}
	if len(batch) == 0 {
		return
	}
	slices.SortFunc(batch, func(a, b fired) int {
		if c := cmp.Compare(a.due, b.due); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	for _, f := range batch {
		i := w.index[f.id]
		w.unlink(i)
		delete(w.index, f.id)
		w.release(i)
	}
	w.nextValid = false
	w.batch = batch[:0]
	if fire == nil {
		return
	}
	for _, f := range batch {
		fire(f.id, w.timeOf(f.due))
	}
}

// expire processes the slots that start at tick cur: on every level whose
// period divides cur, the current slot's entries move down (level 0's become
// ready), and overflow entries now within reach move into the wheel. The
// order of levels does not matter: a moved entry never lands in a slot that
// starts at cur (its delta is below the level's period).
func (w *Wheel) expire() {
	for l := range w.nl {
		s := w.b * uint(l)
		if l > 0 && w.cur&(1<<s-1) != 0 {
			break // higher levels are not at a boundary either
		}
		slot := (w.cur >> s) & w.mask
		li := int32(l)<<w.b | int32(slot)
		w.moveList(li)
	}
	if w.heads[w.over] != nilIdx && w.ovMin-w.cur < w.span {
		w.moveList(w.over)
	}
}

// moveList detaches list li and places each of its entries again.
func (w *Wheel) moveList(li int32) {
	i := w.heads[li]
	if i == nilIdx {
		return
	}
	w.heads[li] = nilIdx
	if li < w.ready {
		w.clearOcc(li)
	}
	for i != nilIdx {
		next := w.nodes[i].next
		w.place(i)
		i = next
	}
}

// Next returns the earliest due time of a pending entry. It is cached and
// recomputed only after the earliest entry fired or was removed; the
// recomputation looks at the ready list, the first occupied slot of each
// level (earlier slots of a level always hold earlier ticks) and the
// overflow list, skipping any whose ticks cannot beat the best so far.
func (w *Wheel) Next() (time.Time, bool) {
	if !w.nextValid {
		w.nextDue, w.nextOK = w.computeNext()
		w.nextValid = true
	}
	if !w.nextOK {
		return time.Time{}, false
	}
	return w.timeOf(w.nextDue), true
}

func (w *Wheel) computeNext() (int64, bool) {
	best, ok := int64(math.MaxInt64), false
	scan := func(li int32) {
		for i := w.heads[li]; i != nilIdx; i = w.nodes[i].next {
			if d := w.nodes[i].due; !ok || d < best {
				best, ok = d, true
			}
		}
	}
	scan(w.ready)
	for l := range w.nl {
		k := w.nextSlot(l)
		if k == 0 {
			continue
		}
		if ok && w.slotTick(l, k) > w.tickOf(best) {
			continue // every entry there is due at or after slotTick
		}
		slot := ((w.cur >> (w.b * uint(l))) + k) & w.mask
		scan(int32(l)<<w.b | int32(slot))
	}
	if w.heads[w.over] != nilIdx && (!ok || w.ovMin <= w.tickOf(best)) {
		scan(w.over)
	}
	return best, ok
}

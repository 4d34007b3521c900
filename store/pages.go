package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"runtime/debug"
	"time"
)

// verifyPages reads a bbolt file's page structure directly, the way bbolt
// will read it, and returns an error if any page it can reach is damaged.
//
// Why our own reader: bbolt trusts its pages. A branch page corrupted to
// point back at one of its ancestors makes every cursor descend forever
// (its stack grows until the process runs out of memory, FuzzOpen), and
// bbolt's own consistency check recurses the same way and runs in a
// goroutine nobody can recover. So before anything walks the tree, Open
// proves it is a tree: every page reachable from the meta page bbolt uses
// is reached once, lies inside the file and below the high-water mark, is
// a branch or leaf page where one belongs (a leaf's depth is not checked:
// uneven depth cannot loop), and holds elements whose keys and values
// lie inside it in strictly increasing key order; sub-bucket roots and
// inline buckets likewise; the freelist names only pages that exist and
// that the tree does not use. What it does not prove (the order of keys
// across pages, leaked pages) cannot loop or fault, and bbolt's own check
// (run before any write of an upgrade) covers it.
//
// It reads the file under a shared lock (bbolt's own, flock), so no
// process writes it meanwhile; between this check and bolt.Open only a
// bbolt commit can change it, and bbolt writes sound pages. An empty file
// is a new store and passes, and so does any file where mapFile cannot
// read under the lock (mapfile_other.go).
func verifyPages(path string, timeout time.Duration) (err error) {
	data, release, err := mapFile(path, timeout)
	if errors.Is(err, errLockTimeout) {
		return fmt.Errorf("store: %s is %w", path, ErrLocked)
	}
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("store: cannot open %s (check owner and permissions): %w", path, err)
	}
	if err != nil {
		return fmt.Errorf("store: read %s: %w", path, err)
	}
	defer release()
	if len(data) == 0 {
		return nil
	}
	// The file may shrink under the mapping (someone else's truncate):
	// that fault becomes a recovered panic, not a crash.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("store: %s is %w: reading its pages faulted: %v", path, ErrInvalid, r)
		}
	}()
	if err := (&pageVerifier{data: data}).run(); err != nil {
		return fmt.Errorf("store: %s is %w: %w", path, ErrInvalid, err)
	}
	return nil
}

// errLockTimeout: mapFile waited its timeout for the file's lock.
var errLockTimeout = errors.New("lock wait timed out")

// bbolt's on-disk format (go.etcd.io/bbolt internal/common, format
// version 2), in the machine's byte order as bbolt writes it.
const (
	boltMagic         = 0xED0CDAED
	boltVersion       = 2
	boltPageHeader    = 16 // id u64, flags u16, count u16, overflow u32
	boltElement       = 16 // branch: pos u32, ksize u32, pgid u64; leaf: flags u32, pos u32, ksize u32, vsize u32
	boltMetaSize      = 64 // magic, version, pageSize, flags u32; root, sequence, freelist, pgid, txid, checksum u64
	boltBucketHeader  = 16 // root u64, sequence u64
	boltBranchPage    = 0x01
	boltLeafPage      = 0x02
	boltFreelistPage  = 0x10
	boltBucketLeaf    = 0x01
	boltNoFreelist    = ^uint64(0)
	boltMaxDepth      = 64 // pages and nested buckets: far beyond any real tree
	boltMinPageSize   = 512
	boltMaxPageSize   = 1 << 20
	boltFreelistCount = 0xFFFF // count field meaning "the first id is the count"
)

var ne = binary.NativeEndian

// boltMeta is the part of a meta page the verifier needs.
type boltMeta struct {
	pageSize uint32
	root     uint64
	freelist uint64
	pgid     uint64
	txid     uint64
}

// readMeta decodes the meta page whose page starts at b; ok reports
// whether bbolt would accept it (magic, version, checksum).
func readMeta(b []byte) (m boltMeta, ok bool) {
	if len(b) < boltPageHeader+boltMetaSize {
		return m, false
	}
	b = b[boltPageHeader:]
	h := fnv.New64a()
	_, _ = h.Write(b[:56])
	if ne.Uint32(b[0:]) != boltMagic || ne.Uint32(b[4:]) != boltVersion || ne.Uint64(b[56:]) != h.Sum64() {
		return m, false
	}
	return boltMeta{
		pageSize: ne.Uint32(b[8:]),
		root:     ne.Uint64(b[16:]),
		freelist: ne.Uint64(b[32:]),
		pgid:     ne.Uint64(b[40:]),
		txid:     ne.Uint64(b[48:]),
	}, true
}

type pageVerifier struct {
	data     []byte
	pageSize uint64
	meta     boltMeta
	seen     []uint64 // bitmap of pages in use, below meta.pgid
}

func (v *pageVerifier) run() error {
	if err := v.chooseMeta(); err != nil {
		return err
	}
	v.seen = make([]uint64, (v.meta.pgid+63)/64)
	v.mark(0, 1) // the meta pages
	if err := v.bucket(v.meta.root, nil, 0); err != nil {
		return fmt.Errorf("root bucket: %w", err)
	}
	return v.freelist()
}

// chooseMeta finds the page size and the meta page as bbolt's Open does:
// the page size from the first meta page that validates (page 0, else the
// second page at each size bbolt tries), then of meta 0 and 1 the one with
// the higher transaction id that validates.
func (v *pageVerifier) chooseMeta() error {
	size := uint64(len(v.data))
	pageSize := uint64(0)
	if m, ok := readMeta(v.data[:min(size, 0x1000)]); ok {
		pageSize = uint64(m.pageSize)
	} else {
		for i := 0; i <= 14; i++ {
			pos := uint64(1024) << i
			if size < 1024 || pos >= size-1024 {
				break
			}
			if m, ok := readMeta(v.data[pos:min(size, pos+0x1000)]); ok {
				pageSize = uint64(m.pageSize)
				break
			}
		}
	}
	if pageSize == 0 {
		pageSize = uint64(os.Getpagesize())
	}
	if pageSize < boltMinPageSize || pageSize > boltMaxPageSize || pageSize&(pageSize-1) != 0 {
		return fmt.Errorf("page size %d", pageSize)
	}
	if size < 2*pageSize {
		return fmt.Errorf("file of %d bytes is shorter than its two meta pages", size)
	}
	v.pageSize = pageSize
	m0, ok0 := readMeta(v.data[:pageSize])
	m1, ok1 := readMeta(v.data[pageSize : 2*pageSize])
	switch {
	case ok0 && (!ok1 || m0.txid >= m1.txid):
		v.meta = m0
	case ok1:
		v.meta = m1
	default:
		return errors.New("no valid meta page")
	}
	if v.meta.pgid < 3 || v.meta.pgid > size/pageSize {
		return fmt.Errorf("high-water mark page %d, file holds %d pages", v.meta.pgid, size/pageSize)
	}
	return nil
}

// page returns the bytes of page id with its overflow pages, checking that
// they lie below the high-water mark and that no other reference reached
// any of them before.
func (v *pageVerifier) page(id uint64) ([]byte, error) {
	if id < 2 || id >= v.meta.pgid {
		return nil, fmt.Errorf("page %d outside 2..%d", id, v.meta.pgid-1)
	}
	head := v.data[id*v.pageSize:]
	if got := ne.Uint64(head); got != id {
		return nil, fmt.Errorf("page %d: header says page %d", id, got)
	}
	overflow := uint64(ne.Uint32(head[12:]))
	if overflow >= v.meta.pgid-id {
		return nil, fmt.Errorf("page %d: %d overflow pages past the high-water mark %d", id, overflow, v.meta.pgid)
	}
	for p := id; p <= id+overflow; p++ {
		if v.used(p) {
			return nil, fmt.Errorf("page %d: reached twice (a cycle or a shared page)", p)
		}
	}
	v.mark(id, id+overflow)
	return v.data[id*v.pageSize : (id+overflow+1)*v.pageSize], nil
}

func (v *pageVerifier) used(p uint64) bool { return v.seen[p/64]&(1<<(p%64)) != 0 }

func (v *pageVerifier) mark(from, to uint64) {
	for p := from; p <= to; p++ {
		v.seen[p/64] |= 1 << (p % 64)
	}
}

// bucket checks the tree of a bucket whose header's root is root; inline
// is the value holding it when root is 0 (an inline bucket).
func (v *pageVerifier) bucket(root uint64, inline []byte, depth int) error {
	if root == 0 {
		if len(inline) < boltBucketHeader+boltPageHeader {
			return fmt.Errorf("inline bucket of %d bytes", len(inline))
		}
		p := inline[boltBucketHeader:]
		if flags := ne.Uint16(p[8:]); flags != boltLeafPage {
			return fmt.Errorf("inline bucket page of type %#x", flags)
		}
		// bbolt never writes a sub-bucket into an inline bucket.
		return v.elements(p, false, depth)
	}
	return v.tree(root, depth)
}

// tree checks the pages of a bucket's B+tree from page id down.
func (v *pageVerifier) tree(id uint64, depth int) error {
	if depth > boltMaxDepth {
		return fmt.Errorf("page %d: deeper than %d levels", id, boltMaxDepth)
	}
	p, err := v.page(id)
	if err != nil {
		return err
	}
	switch flags := ne.Uint16(p[8:]); flags {
	case boltBranchPage:
		n := int(ne.Uint16(p[10:]))
		if n == 0 {
			return fmt.Errorf("page %d: branch without elements", id)
		}
		if boltPageHeader+n*boltElement > len(p) {
			return fmt.Errorf("page %d: %d elements overflow the page", id, n)
		}
		var prev []byte
		for i := range n {
			off := boltPageHeader + i*boltElement
			key, err := span(p, off, ne.Uint32(p[off:]), uint64(ne.Uint32(p[off+4:])))
			if err != nil {
				return fmt.Errorf("page %d element %d: %w", id, i, err)
			}
			if i > 0 && bytes.Compare(prev, key) >= 0 {
				return fmt.Errorf("page %d element %d: keys out of order", id, i)
			}
			prev = key
			if err := v.tree(ne.Uint64(p[off+8:]), depth+1); err != nil {
				return err
			}
		}
		return nil
	case boltLeafPage:
		if err := v.elements(p, true, depth); err != nil {
			return fmt.Errorf("page %d: %w", id, err)
		}
		return nil
	default:
		return fmt.Errorf("page %d: type %#x where a branch or leaf page belongs", id, flags)
	}
}

// elements checks a leaf page's elements (p starts at its page header)
// and the buckets they hold.
func (v *pageVerifier) elements(p []byte, subBuckets bool, depth int) error {
	n := int(ne.Uint16(p[10:]))
	if boltPageHeader+n*boltElement > len(p) {
		return fmt.Errorf("%d elements overflow the page", n)
	}
	var prev []byte
	for i := range n {
		off := boltPageHeader + i*boltElement
		flags := ne.Uint32(p[off:])
		pos, ksize, vsize := ne.Uint32(p[off+4:]), ne.Uint32(p[off+8:]), ne.Uint32(p[off+12:])
		kv, err := span(p, off, pos, uint64(ksize)+uint64(vsize))
		if err != nil {
			return fmt.Errorf("element %d: key and value outside the page", i)
		}
		key, value := kv[:ksize], kv[ksize:]
		if len(key) == 0 {
			return fmt.Errorf("element %d: empty key", i)
		}
		if i > 0 && bytes.Compare(prev, key) >= 0 {
			return fmt.Errorf("element %d: keys out of order", i)
		}
		prev = key
		switch flags {
		case 0:
		case boltBucketLeaf:
			if !subBuckets {
				return fmt.Errorf("element %d: a bucket inside an inline bucket", i)
			}
			if len(value) < boltBucketHeader {
				return fmt.Errorf("element %d: bucket header of %d bytes", i, len(value))
			}
			if err := v.bucket(ne.Uint64(value), value, depth+1); err != nil {
				return fmt.Errorf("bucket %q: %w", key, err)
			}
		default:
			return fmt.Errorf("element %d: flags %#x", i, flags)
		}
	}
	return nil
}

// span returns the n bytes at pos past the element at off, as bbolt
// addresses them, or an error when they leave p.
func span(p []byte, off int, pos uint32, n uint64) ([]byte, error) {
	start := uint64(off) + uint64(pos)
	end := start + n
	if pos < boltElement || end > uint64(len(p)) {
		return nil, fmt.Errorf("%d bytes at %d outside a page of %d", n, start, len(p))
	}
	return p[start:end], nil
}

// freelist checks the freelist page bbolt reads at open: its own pages
// and every id it lists lie below the high-water mark, none is listed
// twice, and none is in use by the tree.
func (v *pageVerifier) freelist() error {
	id := v.meta.freelist
	if id == boltNoFreelist {
		return nil // bbolt rebuilds the list from the (verified) tree
	}
	p, err := v.page(id)
	if err != nil {
		return fmt.Errorf("freelist: %w", err)
	}
	if flags := ne.Uint16(p[8:]); flags != boltFreelistPage {
		return fmt.Errorf("freelist page %d of type %#x", id, flags)
	}
	start, n := uint64(boltPageHeader), uint64(ne.Uint16(p[10:]))
	if n == boltFreelistCount {
		if len(p) < boltPageHeader+8 {
			return fmt.Errorf("freelist page %d: no count", id)
		}
		n, start = ne.Uint64(p[boltPageHeader:]), boltPageHeader+8
	}
	if n > (uint64(len(p))-start)/8 {
		return fmt.Errorf("freelist page %d: %d ids overflow the page", id, n)
	}
	for i := range n {
		free := ne.Uint64(p[start+8*i:])
		if free < 2 || free >= v.meta.pgid {
			return fmt.Errorf("freelist page %d: free page %d outside 2..%d", id, free, v.meta.pgid-1)
		}
		if v.used(free) {
			return fmt.Errorf("freelist page %d: page %d is free and in use (or listed twice)", id, free)
		}
		v.mark(free, free)
	}
	return nil
}

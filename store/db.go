package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Open errors. Each is returned wrapped, with the database path.
var (
	// ErrLocked: another process (or another handle in this one) holds the
	// file lock. The wrapped message reads "store: PATH is locked by
	// another process (is followupd already running?)".
	ErrLocked = errors.New("locked by another process (is followupd already running?)")
	// ErrInvalid: the file is not a bbolt file, is corrupt, or is a bbolt
	// file some other program wrote. Open never writes to such a file.
	ErrInvalid = errors.New("not a valid followupd database")
	// ErrNewerSchema: the file was written by a newer followupd.
	ErrNewerSchema = errors.New("written by a newer followupd")
)

// Lookup errors.
var (
	// ErrNotFound: no message, follow-up or meta key by that name.
	ErrNotFound = errors.New("store: not found")
)

// errRollback ends a write transaction that turned out to change nothing,
// so not even a new transaction id is written.
var errRollback = errors.New("store: nothing to write")

// DefaultTimeout is how long Open waits for the file lock when
// Options.Timeout is zero.
const DefaultTimeout = time.Second

// Options tune Open.
type Options struct {
	Timeout  time.Duration // file lock wait; default DefaultTimeout
	ReadOnly bool          // shared lock, no writes; the file must exist
	Logger   *slog.Logger  // default: discard
	// NoSync skips the fsync of each commit: only for scratch stores
	// (backtest) that a crash may lose whole.
	NoSync bool
}

// DB is followupd's state: messages, follow-ups, the send ledger. It is
// safe for concurrent use; bbolt serialises writers.
type DB struct {
	bdb  *bolt.DB
	path string
	log  *slog.Logger

	// OldestSent's value for a store without keyOldestSent (oldest.go).
	oldest     atomic.Int64
	oldestKept atomic.Bool
}

// Open opens (or creates) the database at path. It creates the parent
// directory (0700) and a new file (0600) when missing. It never overwrites
// an existing file it cannot read as a followupd database: a locked,
// unreadable, foreign or corrupt file gives an error naming the path.
func Open(path string, opt Options) (*DB, error) {
	if opt.Timeout <= 0 {
		opt.Timeout = DefaultTimeout
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if path == "" {
		return nil, errors.New("store: empty database path")
	}
	existed := false
	if st, err := os.Stat(path); err == nil {
		existed = true
		if st.IsDir() {
			return nil, fmt.Errorf("store: %s is a directory, not a database file", path)
		}
	} else if errors.Is(err, fs.ErrNotExist) {
		if opt.ReadOnly {
			return nil, fmt.Errorf("store: open %s read-only: %w", path, err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("store: create state directory for %s: %w", path, err)
		}
	} else {
		return nil, fmt.Errorf("store: cannot access %s (check owner and permissions): %w", path, err)
	}

	if existed {
		// Before bbolt reads a page (its freelist, at open) and before
		// anything walks the tree: a damaged file is refused here, not
		// found by a cursor that never returns.
		began := time.Now()
		if err := verifyPages(path, opt.Timeout); err != nil {
			return nil, err
		}
		// One wait for the lock in all: bbolt gets what is left of it.
		opt.Timeout = max(opt.Timeout-time.Since(began), time.Millisecond)
	}
	bdb, err := openBolt(path, opt)
	if err != nil {
		return nil, err
	}
	db := &DB{bdb: bdb, path: path, log: opt.Logger.With("pkg", "store")}
	if err := db.initSchema(opt.ReadOnly); err != nil {
		if cerr := bdb.Close(); cerr != nil {
			db.log.Warn("closing database after failed open", "path", path, "err", cerr)
		}
		return nil, err
	}
	db.log.Debug("database open", "path", path, "readonly", opt.ReadOnly)
	return db, nil
}

// initialMmapSize is the bbolt mapping reserved at open (see openBolt).
const initialMmapSize = 1 << 30

// openBolt opens the bbolt file, turning bbolt's errors and panics (it may
// panic on some corrupt files) into clear errors.
func openBolt(path string, opt Options) (bdb *bolt.DB, err error) {
	// A corrupt page can point outside the mapping: make that fault a
	// panic this goroutine recovers from instead of a crash.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	var file *os.File // captured so a panic inside bolt.Open can still release it
	bopt := &bolt.Options{
		Timeout:  opt.Timeout,
		ReadOnly: opt.ReadOnly,
		NoSync:   opt.NoSync,
		// Address space, not memory: with the mapping already as large as
		// the file will be for a long time, a growing file (a first sync
		// writes every message) is not remapped, and bbolt does not copy
		// every node of the open write transaction out of the old mapping
		// at each remap (a third of a first sync's allocations; bench/NOTES.md).
		InitialMmapSize: initialMmapSize,
		OpenFile: func(name string, flag int, mode os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, mode)
			file = f
			return f, err
		},
	}
	defer func() {
		if r := recover(); r != nil {
			if bdb != nil {
				_ = bdb.Close()
			} else if file != nil {
				_ = file.Close()
			}
			bdb, err = nil, fmt.Errorf("store: %s is %w: bbolt panicked: %v", path, ErrInvalid, r)
		}
	}()
	bdb, err = bolt.Open(path, 0o600, bopt)
	switch {
	case err == nil:
		return bdb, nil
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("store: %s is %w", path, ErrLocked)
	case errors.Is(err, fs.ErrPermission):
		return nil, fmt.Errorf("store: cannot open %s (check owner and permissions): %w", path, err)
	case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrVersionMismatch),
		errors.Is(err, bolterrors.ErrChecksum), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return nil, fmt.Errorf("store: %s is %w: %w", path, ErrInvalid, err)
	default:
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
}

// initSchema checks the schema version and, in a brand-new file, creates
// the buckets. A bbolt file with buckets but no schema is someone else's
// and is left untouched.
func (db *DB) initSchema(readOnly bool) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("store: %s is %w: bbolt panicked: %v", db.path, ErrInvalid, r)
		}
	}()
	var version uint32
	var foreign []string
	var missing bool
	err = db.view(func(tx *bolt.Tx) error {
		if m := tx.Bucket(bucketMeta); m != nil {
			v := m.Get(keySchema)
			if len(v) != 4 {
				return fmt.Errorf("store: %s is %w: schema version of %d bytes", db.path, ErrInvalid, len(v))
			}
			version = binary.BigEndian.Uint32(v)
		}
		return tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			known := false
			for _, b := range allBuckets {
				if bytes.Equal(b, name) {
					known = true
				}
			}
			if !known {
				foreign = append(foreign, string(name))
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	if version == 0 && len(foreign) > 0 {
		return fmt.Errorf("store: %s is %w: it holds buckets %q and no followupd schema", db.path, ErrInvalid, foreign)
	}
	if version > schemaVersion {
		return fmt.Errorf("store: %s is %w (schema %d; this build reads up to %d)", db.path, ErrNewerSchema, version, schemaVersion)
	}
	err = db.view(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if tx.Bucket(b) == nil {
				missing = true
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !missing && version == schemaVersion {
		return nil
	}
	if readOnly {
		return fmt.Errorf("store: %s is %w: not initialised (open it read-write once)", db.path, ErrInvalid)
	}
	if version != 0 {
		// An existing store is about to be written (an upgrade, a bucket
		// added): only when bbolt finds every page in order. A damaged
		// freelist made the commit grow the file to terabytes before it
		// failed (FuzzOpen); a corrupt file is never written to.
		err := db.view(func(tx *bolt.Tx) error {
			var first error
			for cerr := range tx.Check() { // drained: the checker reads tx until it closes
				if first == nil {
					first = fmt.Errorf("store: %s is %w: %v", db.path, ErrInvalid, cerr)
				}
			}
			return first
		})
		if err != nil {
			return err
		}
	}
	return db.update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("store: create bucket %s in %s: %w", b, db.path, err)
			}
		}
		var v [4]byte
		binary.BigEndian.PutUint32(v[:], schemaVersion)
		if err := tx.Bucket(bucketMeta).Put(keySchema, v[:]); err != nil {
			return fmt.Errorf("store: write schema version in %s: %w", db.path, err)
		}
		return nil
	})
}

// update runs fn in a write transaction. bbolt panics on some corrupt
// pages (a double-freed page at commit, a page pointer past the mapping):
// those become an error naming the file, so the daemon stops acting on a
// broken store instead of crashing in the middle of a send.
func (db *DB) update(fn func(*bolt.Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer db.recoverTx(&err)
	return db.bdb.Update(fn)
}

// view runs fn in a read transaction, recovering like update.
func (db *DB) view(fn func(*bolt.Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer db.recoverTx(&err)
	return db.bdb.View(fn)
}

func (db *DB) recoverTx(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("store: %s is %w: transaction panicked: %v", db.path, ErrInvalid, r)
		db.log.Error("database transaction panicked; the file may be corrupt", "path", db.path, "err", *err)
	}
}

// walk touches every key and value of every bucket, so a corrupt page
// faults here, under SetPanicOnFault and recover, rather than later in the
// daemon. It reads page headers and the ends of each value, not every
// byte, so it costs time in proportion to the number of keys.
func walk(tx *bolt.Tx) {
	var sink byte
	var visit func(b *bolt.Bucket)
	visit = func(b *bolt.Bucket) {
		_ = b.ForEach(func(k, v []byte) error {
			sink ^= k[0] ^ k[len(k)-1]
			if v == nil {
				if sub := b.Bucket(k); sub != nil {
					visit(sub)
				}
			} else if len(v) > 0 {
				sink ^= v[0] ^ v[len(v)-1]
			}
			return nil
		})
	}
	_ = tx.ForEach(func(name []byte, b *bolt.Bucket) error {
		visit(b)
		return nil
	})
	_ = sink
}

// Close closes the file and releases the lock.
func (db *DB) Close() error {
	if err := db.bdb.Close(); err != nil {
		return fmt.Errorf("store: close %s: %w", db.path, err)
	}
	return nil
}

// Path is the file the database lives in.
func (db *DB) Path() string { return db.path }

// Backup writes a consistent copy of the whole database to w while the
// daemon keeps running (one read transaction).
func (db *DB) Backup(w io.Writer) (int64, error) {
	var n int64
	err := db.view(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("store: backup %s: %w", db.path, err)
	}
	return n, nil
}

// Meta returns a small value stored with PutMeta (e.g. "indexed/<account>"),
// or ErrNotFound.
func (db *DB) Meta(key string) ([]byte, error) {
	var out []byte
	err := db.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketKV).Get([]byte(key))
		if v == nil {
			return fmt.Errorf("meta %q: %w", key, ErrNotFound)
		}
		out = bytes.Clone(v)
		return nil
	})
	return out, err
}

// PutMeta stores a small value under key; nil val deletes it.
func (db *DB) PutMeta(key string, val []byte) error {
	if key == "" {
		return errors.New("store: empty meta key")
	}
	return db.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKV)
		if val == nil {
			return b.Delete([]byte(key))
		}
		if err := b.Put([]byte(key), val); err != nil {
			return fmt.Errorf("store: put meta %q: %w", key, err)
		}
		return nil
	})
}

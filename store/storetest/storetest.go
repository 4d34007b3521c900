// Package storetest opens throwaway followupd databases for tests, the way
// bbolt's internal/btesting does: each lives in t.TempDir, and a cleanup
// runs store.Check (every index and ledger invariant) before closing, so a
// test that leaves the store inconsistent fails even if its own assertions
// pass. Reopen closes and reopens the file to test what survives a restart.
package storetest

import (
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"followupd/store"
)

// DB is a store.DB owned by one test.
type DB struct {
	*store.DB
	t testing.TB
}

// New opens a fresh database in t.TempDir. Store logs go to t.Log.
func New(t testing.TB) *DB {
	t.Helper()
	return Open(t, filepath.Join(t.TempDir(), "followupd.db"))
}

// Open opens (or creates) the database at path for the test.
func Open(t testing.TB, path string) *DB {
	t.Helper()
	d := &DB{t: t}
	d.DB = d.open(path)
	t.Cleanup(func() {
		if d.DB == nil {
			return
		}
		if err := d.Check(); err != nil {
			t.Errorf("store consistency check at cleanup: %v", err)
		}
		if err := d.DB.Close(); err != nil {
			t.Errorf("closing store at cleanup: %v", err)
		}
		d.DB = nil
	})
	return d
}

func (d *DB) open(path string) *store.DB {
	d.t.Helper()
	db, err := store.Open(path, store.Options{Timeout: 2 * time.Second, Logger: Logger(d.t)})
	if err != nil {
		d.t.Fatalf("open store: %v", err)
	}
	return db
}

// Reopen checks and closes the database, then opens the same file again,
// like a daemon restart.
func (d *DB) Reopen() {
	d.t.Helper()
	path := d.Path()
	if err := d.Check(); err != nil {
		d.t.Errorf("store consistency check before reopen: %v", err)
	}
	if err := d.DB.Close(); err != nil {
		d.t.Fatalf("close store before reopen: %v", err)
	}
	d.DB = d.open(path)
}

// Logger returns a slog.Logger writing to t.Log.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(trimNewline(p)))
	return len(p), nil
}

func trimNewline(p []byte) []byte {
	if n := len(p); n > 0 && p[n-1] == '\n' {
		return p[:n-1]
	}
	return p
}

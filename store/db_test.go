package store_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"followupd/store"
	"followupd/store/storetest"
)

// writeFile creates path with content and returns it.
func writeFile(t *testing.T, path string, content []byte) {
	t.Helper()
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOpenCreatesParent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "sub", "followupd.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.Path() != path {
		t.Errorf("Path %q", db.Path())
	}
	st, err := os.Stat(filepath.Dir(path))
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("state dir: %v %v", st.Mode(), err)
	}
	st, err = os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("db file: %v %v", st.Mode(), err)
	}
	if err := db.Check(); err != nil {
		t.Error(err)
	}
}

func TestOpenLocked(t *testing.T) {
	db := storetest.New(t)
	start := time.Now()
	_, err := store.Open(db.Path(), store.Options{Timeout: 100 * time.Millisecond})
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v to fail", d)
	}
	want := "store: " + db.Path() + " is locked by another process (is followupd already running?)"
	if err.Error() != want {
		t.Errorf("message %q\nwant    %q", err, want)
	}
	// The first handle is unharmed.
	if _, _, err := db.Track(newFollowUp("a@x", t0), t0, ""); err != nil {
		t.Errorf("first handle after failed second open: %v", err)
	}
}

// TestOpenRefuses: every bad file gives a clear error naming the path and
// stays byte-for-byte as it was.
func TestOpenRefuses(t *testing.T) {
	dir := t.TempDir()
	valid := filepath.Join(dir, "valid.db")
	vdb, err := store.Open(valid, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := vdb.Track(newFollowUp("a@x", t0), t0, ""); err != nil {
		t.Fatal(err)
	}
	if err := vdb.Close(); err != nil {
		t.Fatal(err)
	}
	validBytes := mustRead(t, valid)

	garbage := bytes.Repeat([]byte("this is not a database\n"), 1000)
	pageSize := os.Getpagesize()
	for _, tc := range []struct {
		name  string
		setup func(path string)
		want  error
		text  string
	}{
		{"garbage", func(p string) { writeFile(t, p, garbage) }, store.ErrInvalid, "is not a valid followupd database"},
		{"short garbage", func(p string) { writeFile(t, p, []byte("hello")) }, store.ErrInvalid, "is not a valid followupd database"},
		{"text config by mistake", func(p string) { writeFile(t, p, []byte("[[account]]\nname = \"work\"\n")) }, store.ErrInvalid, "not a valid"},
		{"both meta pages broken", func(p string) {
			b := bytes.Clone(validBytes)
			for i := 16; i < 64; i++ {
				b[i] ^= 0xff
				b[pageSize+i] ^= 0xff
			}
			writeFile(t, p, b)
		}, store.ErrInvalid, "not a valid"},
		{"foreign bbolt file", func(p string) {
			bdb, err := bolt.Open(p, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := bdb.Update(func(tx *bolt.Tx) error {
				b, err := tx.CreateBucket([]byte("someone-else"))
				if err != nil {
					return err
				}
				return b.Put([]byte("k"), []byte("v"))
			}); err != nil {
				t.Fatal(err)
			}
			bdb.Close()
		}, store.ErrInvalid, `"someone-else"`},
		{"newer schema", func(p string) {
			writeFile(t, p, validBytes)
			bdb, err := bolt.Open(p, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := bdb.Update(func(tx *bolt.Tx) error {
				return tx.Bucket([]byte("meta")).Put([]byte("schema"), binary.BigEndian.AppendUint32(nil, 99))
			}); err != nil {
				t.Fatal(err)
			}
			bdb.Close()
		}, store.ErrNewerSchema, "schema 99"},
		{"directory", func(p string) {
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
		}, nil, "is a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "followupd.db")
			tc.setup(path)
			var before []byte
			if st, _ := os.Stat(path); !st.IsDir() {
				before = mustRead(t, path)
			}
			db, err := store.Open(path, store.Options{Timeout: 100 * time.Millisecond})
			if err == nil {
				db.Close()
				t.Fatal("opened")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("err %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.text) {
				t.Errorf("message %q should name the path and say %q", err, tc.text)
			}
			if before != nil && !bytes.Equal(before, mustRead(t, path)) {
				t.Error("file changed")
			}
			t.Log(err)
		})
	}
}

func TestOpenUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root: permissions do not block reads")
	}
	path := filepath.Join(t.TempDir(), "followupd.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	before := mustRead(t, path)
	if err := os.Chmod(path, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(path, 0o600) })
	_, err = store.Open(path, store.Options{})
	if err == nil || !errors.Is(err, os.ErrPermission) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "permission") {
		t.Fatalf("err %v", err)
	}
	os.Chmod(path, 0o600)
	if !bytes.Equal(before, mustRead(t, path)) {
		t.Error("file changed")
	}
}

func TestOpenReadOnlyAndBackup(t *testing.T) {
	db := storetest.New(t)
	f, _, err := db.Track(newFollowUp("a@x", t0.Add(time.Hour)), t0, "")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	n, err := db.Backup(&buf)
	if err != nil || n != int64(buf.Len()) || n == 0 {
		t.Fatalf("backup %d %v", n, err)
	}
	copyPath := filepath.Join(t.TempDir(), "copy.db")
	writeFile(t, copyPath, buf.Bytes())
	ro, err := store.Open(copyPath, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if err := ro.Check(); err != nil {
		t.Error(err)
	}
	got, err := ro.Get(f.ID)
	if err != nil || got.MessageID != "a@x" {
		t.Errorf("backup copy: %v %v", got, err)
	}
	if _, _, err := ro.Track(newFollowUp("b@x", t0), t0, ""); err == nil {
		t.Error("write to read-only store accepted")
	}
	if _, err := store.Open(filepath.Join(t.TempDir(), "missing.db"), store.Options{ReadOnly: true}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("read-only open of a missing file: %v", err)
	}
}

// FuzzOpen: whatever bytes sit in the file, Open returns a database or an
// error, never panics, never hangs (a page cycle: testdata/fuzz/FuzzOpen/
// page-cycle), and never changes a file it refuses.
func FuzzOpen(f *testing.F) {
	dir := f.TempDir()
	valid := filepath.Join(dir, "valid.db")
	vdb, err := store.Open(valid, store.Options{})
	if err != nil {
		f.Fatal(err)
	}
	if _, _, err := vdb.Track(newFollowUp("a@x", t0), t0, ""); err != nil {
		f.Fatal(err)
	}
	vdb.Close()
	vb, err := os.ReadFile(valid)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(vb, 0, byte(0))
	f.Add(vb, 20, byte(0xff))
	f.Add(vb, 4096+20, byte(0x01))
	f.Add(vb, 2*4096+30, byte(0x55))
	f.Add([]byte("garbage"), 0, byte(0))
	f.Fuzz(func(t *testing.T, content []byte, at int, xor byte) {
		content = bytes.Clone(content)
		if len(content) > 0 {
			at = ((at % len(content)) + len(content)) % len(content)
			content[at] ^= xor
		}
		path := filepath.Join(t.TempDir(), "followupd.db")
		writeFile(t, path, content)
		db, err := store.Open(path, store.Options{Timeout: 50 * time.Millisecond})
		if err != nil {
			if !bytes.Equal(content, mustRead(t, path)) {
				t.Fatalf("refused file changed (%v)", err)
			}
			return
		}
		// Opened: a damaged page may still lurk; reads and writes must
		// return errors rather than crash.
		_, _ = db.List(store.Filter{})
		_, _ = db.Counts()
		_ = db.PendingDue(func(uint64, time.Time) bool { return true })
		_, _, _ = db.Track(newFollowUp("b@x", t0), t0, "")
		db.Close()
	})
}

package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"followupd/message"
)

// Open proves the page structure is a tree before anything walks it: a
// store with branch and overflow pages opens; each kind of damage a cursor
// or bbolt's own check would loop on or fault in is refused as ErrInvalid,
// promptly, and the file is left as it was.
func TestOpenVerifiesPages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "followupd.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	recs := make([]*message.Record, 3000)
	for i := range recs {
		recs[i] = &message.Record{MessageID: fmt.Sprintf("m%05d@example.com", i), Subject: "Offer", Account: "a", Mailbox: "INBOX", UIDValidity: 1, UID: uint32(i + 1)}
	}
	recs[7].Subject = string(bytes.Repeat([]byte("long subject "), 1000)) // an overflow page
	if _, err := db.PutMessages(recs); err != nil {
		t.Fatal(err)
	}
	for range 3 { // freed pages in the freelist
		if _, err := db.PutMessages([]*message.Record{{MessageID: recs[0].MessageID, Account: "a", Mailbox: "INBOX", UIDValidity: 1, UID: 1, Flags: []string{fmt.Sprint(time.Now().UnixNano())}}}); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v := &pageVerifier{data: good}
	if err := v.run(); err != nil {
		t.Fatalf("sound store: %v", err)
	}
	var branch, overflow, free uint64
	for id := uint64(2); id < v.meta.pgid; id++ {
		p := good[id*v.pageSize:]
		if ne.Uint64(p) != id || !v.used(id) {
			continue
		}
		switch flags := ne.Uint16(p[8:]); {
		case flags == boltBranchPage && branch == 0:
			branch = id
		case flags == boltLeafPage && ne.Uint32(p[12:]) > 0 && overflow == 0:
			overflow = id
		}
	}
	fl := good[v.meta.freelist*v.pageSize:]
	if n := ne.Uint16(fl[10:]); n > 0 && n != boltFreelistCount {
		free = v.meta.freelist*v.pageSize + boltPageHeader // first free id
	}
	if branch == 0 || overflow == 0 || free == 0 {
		t.Fatalf("the store lacks a branch page (%d), an overflow page (%d) or a free page (%d)", branch, overflow, free)
	}
	damage := map[string]func(b []byte){
		"branch points at itself": func(b []byte) { ne.PutUint64(b[branch*v.pageSize+boltPageHeader+8:], branch) },
		"child page shared": func(b []byte) {
			p := b[branch*v.pageSize+boltPageHeader:]
			ne.PutUint64(p[boltElement+8:], ne.Uint64(p[8:]))
		},
		"child beyond high-water": func(b []byte) { ne.PutUint64(b[branch*v.pageSize+boltPageHeader+8:], v.meta.pgid+5) },
		"element past page end":   func(b []byte) { ne.PutUint32(b[branch*v.pageSize+boltPageHeader:], uint32(v.pageSize)) },
		"page header wrong id":    func(b []byte) { ne.PutUint64(b[branch*v.pageSize:], branch+1) },
		"overflow past the end":   func(b []byte) { ne.PutUint32(b[overflow*v.pageSize+12:], 1<<30) },
		"page of wrong type":      func(b []byte) { ne.PutUint16(b[branch*v.pageSize+8:], boltFreelistPage) },
		"free page in use":        func(b []byte) { ne.PutUint64(b[free:], branch) },
		"free page out of range":  func(b []byte) { ne.PutUint64(b[free:], 1<<40) },
	}
	for name, spoil := range damage {
		t.Run(name, func(t *testing.T) {
			bad := bytes.Clone(good)
			spoil(bad)
			p := filepath.Join(t.TempDir(), "followupd.db")
			if err := os.WriteFile(p, bad, 0o600); err != nil {
				t.Fatal(err)
			}
			db, err := Open(p, Options{Timeout: 50 * time.Millisecond})
			if err == nil {
				db.Close()
				t.Fatal("damaged store opened")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("err = %v, want ErrInvalid", err)
			}
			if after, _ := os.ReadFile(p); !bytes.Equal(after, bad) {
				t.Error("refused file changed")
			}
		})
	}
}

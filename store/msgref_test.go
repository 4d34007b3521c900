package store

import (
	"encoding/binary"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"followupd/message"
)

// Schema 3 stores new records in msgrec behind a reference; a schema 2
// file's inline records keep reading, updating and checking as before, and
// Check finds a reference that resolves to nothing.
func TestMessageRefsAndSchema2Inline(t *testing.T) {
	path := filepath.Join(t.TempDir(), "followupd.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	old := fullRecord()
	old.MessageID, old.Mailbox, old.Role = "old@x.test", "Sent", message.RoleSent
	inline, err := encodeRecord(nil, old)
	if err != nil {
		t.Fatal(err)
	}
	err = db.update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketMsg).Put([]byte(old.MessageID), inline); err != nil {
			return err
		}
		if err := tx.DeleteBucket(bucketMsgRec); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keySchema, binary.BigEndian.AppendUint32(nil, 2))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if db, err = Open(path, Options{}); err != nil {
		t.Fatalf("open a schema 2 file: %v", err)
	}
	defer db.Close()

	fresh := fullRecord()
	fresh.MessageID, fresh.UID = "new@x.test", old.UID+1
	if _, err := db.PutMessages([]*message.Record{fresh}); err != nil {
		t.Fatal(err)
	}
	_ = db.view(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMsg).Get([]byte(fresh.MessageID)); !isMsgRef(v) {
			t.Errorf("new record stored as %.12q, want a reference", v)
		}
		if v := tx.Bucket(bucketMsg).Get([]byte(old.MessageID)); isMsgRef(v) {
			t.Error("the inline record was moved")
		}
		return nil
	})
	known, err := db.KnownMessages([]string{old.MessageID, fresh.MessageID, "none@x.test"})
	if err != nil || len(known) != 2 || known[old.MessageID].Subject != old.Subject || known[fresh.MessageID].UID != fresh.UID {
		t.Fatalf("KnownMessages = %v, %v", known, err)
	}
	// Flags change in place, wherever the record lives.
	for _, r := range []*message.Record{old, fresh} {
		u := *r
		u.Flags = []string{`\Flagged`}
		if _, err := db.PutMessages([]*message.Record{&u}); err != nil {
			t.Fatal(err)
		}
		if got, err := db.Message(r.MessageID); err != nil || len(got.Flags) != 1 || got.Flags[0] != `\Flagged` || got.Subject != r.Subject {
			t.Errorf("%s after a flag update: %+v, %v", r.MessageID, got, err)
		}
	}
	if err := db.Check(); err != nil {
		t.Fatal(err)
	}
	// A reference to a record that is gone is a damaged store.
	err = db.update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketMsgRec).Cursor()
		k, _ := c.First()
		return tx.Bucket(bucketMsgRec).Delete(k)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Check(); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("Check of a dangling reference: %v", err)
	}
	if _, err := db.Message(fresh.MessageID); err == nil {
		t.Error("Message of a dangling reference: no error")
	}
}

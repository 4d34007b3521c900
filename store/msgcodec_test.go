package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"followupd/message"
)

func fullRecord() *message.Record {
	return &message.Record{
		Account: "work", Mailbox: "INBOX", Role: message.RoleInbox, UIDValidity: 1 << 31, UID: 70000,
		MessageID: "a@x", SyntheticID: true,
		InReplyTo:   []string{"p@x"},
		References:  []string{"q@x", "p@x"},
		From:        []message.Address{{Name: "Иван", Addr: "ivan@buyer.example"}},
		Sender:      []message.Address{{Addr: "s@x"}},
		ReplyTo:     []message.Address{{Addr: "r@x"}},
		To:          []message.Address{{Name: "Me", Addr: "me@seller.example"}, {Addr: "b@x"}},
		Cc:          []message.Address{{Addr: "c@x"}},
		Bcc:         []message.Address{{Addr: "d@x"}},
		Subject:     "Re: коммерческое предложение",
		Date:        time.Date(2026, 3, 4, 5, 6, 7, 8, time.FixedZone("", 3*3600)),
		Internal:    time.Date(2026, 3, 4, 2, 6, 9, 0, time.UTC),
		Flags:       []string{`\Seen`, "$Label1"},
		ContentType: "multipart/report; report-type=delivery-status",
		Headers:     map[string]string{"Subject": "Re: коммерческое предложение", "Auto-Submitted": "no", "X-Empty": ""},
		Attachments: []message.Attachment{{Filename: "offer.pdf", ContentType: "application/pdf"}, {ContentType: "image/png"}},
		HasBody:     true,
		Report: &message.Report{
			Recipients:        []message.DSNRecipient{{FinalRecipient: "x@y", Action: "failed", Status: "5.1.1", Diagnostic: "smtp; 550 no such user"}},
			OriginalMessageID: "o@x", OriginalTo: []string{"x@y"},
		},
	}
}

func TestRecordCodecRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		rec  *message.Record
	}{
		{"every field", fullRecord()},
		{"minimal", &message.Record{MessageID: "m@x"}},
		{"empty lists kept apart from nil", &message.Record{MessageID: "m@x", Flags: []string{}, InReplyTo: []string{""}}},
		{"report without recipients", &message.Record{MessageID: "m@x", Report: &message.Report{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := encodeRecord(nil, tc.rec)
			if err != nil {
				t.Fatal(err)
			}
			var got message.Record
			if err := decodeRecord(b, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(&got, tc.rec) {
				t.Errorf("round trip:\n got %+v\nwant %+v", &got, tc.rec)
			}
			// Every truncation is an error, never a panic or a wrong record.
			for n := range len(b) {
				var r message.Record
				if err := decodeRecord(b[:n], &r); !errors.Is(err, errMsgCodec) {
					t.Fatalf("decode of %d of %d bytes: %v, want errMsgCodec", n, len(b), err)
				}
			}
		})
	}
}

// A schema 1 file (JSON message records) opens, its records read as they
// were written, and a flag update rewrites one in the binary form.
func TestSchema1MessagesStillRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "followupd.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := fullRecord()
	want.Mailbox, want.Role = "Sent", message.RoleSent
	js, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	err = db.update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketMsg).Put([]byte(want.MessageID), js); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keySchema, binary.BigEndian.AppendUint32(nil, 1))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatalf("open a schema 1 file: %v", err)
	}
	defer db.Close()
	var version uint32
	_ = db.view(func(tx *bolt.Tx) error {
		version = binary.BigEndian.Uint32(tx.Bucket(bucketMeta).Get(keySchema))
		return nil
	})
	if version != schemaVersion {
		t.Errorf("schema after open %d, want %d", version, schemaVersion)
	}
	got, err := db.Message(want.MessageID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Subject != want.Subject || !got.Date.Equal(want.Date) || got.Report == nil || len(got.Headers) != 3 || got.UID != want.UID {
		t.Errorf("schema 1 record read as %+v", got)
	}
	upd := *want
	upd.Flags = []string{`\Flagged`}
	if _, err := db.PutMessages([]*message.Record{&upd}); err != nil {
		t.Fatal(err)
	}
	_ = db.view(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMsg).Get([]byte(want.MessageID)); len(v) == 0 || v[0] != msgCodecV1 {
			t.Errorf("updated record not rewritten in the binary form: %.20q", v)
		}
		return nil
	})
	if got, err := db.Message(want.MessageID); err != nil || !reflect.DeepEqual(got.Flags, upd.Flags) || got.Subject != want.Subject {
		t.Errorf("after the flag update: %+v, %v", got, err)
	}
}

func FuzzDecodeRecord(f *testing.F) {
	b, _ := encodeRecord(nil, fullRecord())
	f.Add(b)
	f.Add([]byte{msgCodecV1})
	f.Add([]byte(`{"message_id":"a@x"}`))
	f.Fuzz(func(t *testing.T, v []byte) {
		var r message.Record
		if decodeRecord(v, &r) != nil || len(v) == 0 || v[0] != msgCodecV1 {
			return
		}
		// What decodes re-encodes to something that decodes the same.
		b, err := encodeRecord(nil, &r)
		if err != nil {
			return
		}
		var r2 message.Record
		if err := decodeRecord(b, &r2); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		// Compared encoded: time.FixedZone locations are never DeepEqual.
		if b2, err := encodeRecord(nil, &r2); err != nil || !bytes.Equal(b, b2) {
			t.Errorf("re-encode differs: %v\n%q\n%q", err, b, b2)
		}
	})
}

func BenchmarkRecordEncode(b *testing.B) {
	r := fullRecord()
	r.Report = nil
	b.Run("binary", func(b *testing.B) {
		for b.Loop() {
			v, _ := encodeRecord(nil, r)
			b.SetBytes(int64(len(v)))
		}
	})
	b.Run("json", func(b *testing.B) {
		for b.Loop() {
			v, _ := json.Marshal(r)
			b.SetBytes(int64(len(v)))
		}
	})
}

// A shallow record (a sync's history) is stored with its header block and
// read back whole: the record a full parse gives.
func TestShallowRecordStoredAndReadWhole(t *testing.T) {
	raw := []byte("Message-ID: <hist-1@buyer.test>\r\nDate: Tue, 03 Mar 2026 10:00:00 +0300\r\nFrom: =?utf-8?b?0JDQvdC90LA=?= <anna@buyer.test>\r\nTo: ivan@seller.test\r\nSubject: Re: offer\r\nIn-Reply-To: <offer-1@seller.test>\r\nAuto-Submitted: no\r\n\r\n")
	side := func(r *message.Record) {
		r.Account, r.Mailbox, r.Role, r.UIDValidity, r.UID = "work", "INBOX", message.RoleInbox, 9, 77
		r.Internal = time.Date(2026, 3, 3, 7, 1, 0, 0, time.UTC)
		r.Flags = []string{`\Seen`}
		r.Attachments = []message.Attachment{{Filename: "a.pdf", ContentType: "application/pdf"}}
		if r.ContentType == "" {
			r.ContentType = "multipart/mixed"
		}
	}
	sh, ok := message.ParseShallow(raw)
	if !ok {
		t.Fatal("no shallow record")
	}
	side(sh)
	v, err := encodeRecord(nil, sh)
	if err != nil || v[0] != msgCodecRaw {
		t.Fatalf("encode: %.10q, %v", v, err)
	}
	var got message.Record
	if err := decodeRecord(v, &got); err != nil {
		t.Fatal(err)
	}
	want, err := message.ParseHeader(raw)
	if err != nil {
		t.Fatal(err)
	}
	side(want)
	a, _ := encodeRecord(nil, &got)
	b, _ := encodeRecord(nil, want)
	if got.IsShallow() || !bytes.Equal(a, b) || got.From[0].Name != "Анна" {
		t.Errorf("read back %+v\nwant      %+v", got, *want)
	}
}

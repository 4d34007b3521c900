package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"followupd/message"
)

// Message records (bucket msg) are stored in a compact binary form since
// schema 2: a version byte, then every field of message.Record in a fixed
// order. JSON (schema 1, a value starting with '{') is still read, so a
// file written before keeps working without a rewrite. The binary form
// costs a fraction of json.Marshal and writes fewer pages per commit; a
// first sync stores every message it sees (bench/NOTES.md).
//
// Layout after the version byte: strings and byte strings are a uvarint
// length and the bytes; counts are uvarints; uint32s are uvarints; times
// are a length-prefixed time.Time.MarshalBinary; flags are one byte
// (bit 0 SyntheticID, bit 1 HasBody, bit 2 Report present).
const msgCodecV1 byte = 1

var errMsgCodec = errors.New("malformed message record")

// msgCodecRaw is the form of a shallow record (message.ParseShallow: a
// sync's history, stored without reading its header): what the server said
// of the message and the header block itself, which decodeRecord parses
// (message.Record.Deepen), so readers get a parsed record: whole, but for
// history fetched light (imapwatch), whose block holds only a few fields
// and which nothing judges. Layout
// after the version byte: Account, Mailbox, Role, UIDValidity, UID,
// MessageID, Date, Internal, Flags, ContentType, Attachments (as in
// msgCodecV1), then the header block as a byte string.
const msgCodecRaw byte = 2

// encodeRecord appends r (without Body) in the binary form; a shallow
// record in the raw form.
func encodeRecord(b []byte, r *message.Record) ([]byte, error) {
	if r.IsShallow() {
		return encodeRaw(b, r)
	}
	b = appendHead(append(b, msgCodecV1), r)
	var flags byte
	if r.SyntheticID {
		flags |= 1
	}
	if r.HasBody {
		flags |= 2
	}
	if r.Report != nil {
		flags |= 4
	}
	b = append(b, flags)
	b = appendStrs(b, r.InReplyTo)
	b = appendStrs(b, r.References)
	for _, as := range [][]message.Address{r.From, r.Sender, r.ReplyTo, r.To, r.Cc, r.Bcc} {
		b = binary.AppendUvarint(b, uint64(len(as)))
		for _, a := range as {
			b = appendStr(b, a.Name)
			b = appendStr(b, a.Addr)
		}
	}
	b = appendStr(b, r.Subject)
	b, err := appendSeen(b, r)
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(r.Headers))
	for k := range r.Headers {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = appendStr(b, k)
		b = appendStr(b, r.Headers[k])
	}
	b = appendAttachments(b, r.Attachments)
	if rep := r.Report; rep != nil {
		b = binary.AppendUvarint(b, uint64(len(rep.Recipients)))
		for _, d := range rep.Recipients {
			b = appendStr(b, d.FinalRecipient)
			b = appendStr(b, d.Action)
			b = appendStr(b, d.Status)
			b = appendStr(b, d.Diagnostic)
		}
		b = appendStr(b, rep.OriginalMessageID)
		b = appendStrs(b, rep.OriginalTo)
	}
	return b, nil
}

func encodeRaw(b []byte, r *message.Record) ([]byte, error) {
	b = appendHead(append(b, msgCodecRaw), r)
	b, err := appendSeen(b, r)
	if err != nil {
		return nil, err
	}
	b = appendAttachments(b, r.Attachments)
	b = binary.AppendUvarint(b, uint64(len(r.Raw)))
	return append(b, r.Raw...), nil
}

// appendSeen appends what both record forms keep of how the message was
// seen: Date, Internal, Flags, ContentType (read back by decoder.seen).
func appendSeen(b []byte, r *message.Record) ([]byte, error) {
	var err error
	for _, t := range []time.Time{r.Date, r.Internal} {
		if b, err = appendTime(b, t); err != nil {
			return nil, err
		}
	}
	b = appendStrs(b, r.Flags)
	return appendStr(b, r.ContentType), nil
}

func (d *decoder) seen(r *message.Record) {
	r.Date = d.time()
	r.Internal = d.time()
	r.Flags = d.strs()
	r.ContentType = d.str()
}

// decodeRaw reads the raw form and parses its header block.
func decodeRaw(v []byte, r *message.Record) error {
	d := decoder{b: v[1:]}
	*r = message.Record{}
	d.head(r)
	d.seen(r)
	r.Attachments = d.attachments()
	raw := bytes.Clone(d.bytes("header"))
	if d.err != nil {
		return d.err
	}
	if len(d.b) != 0 {
		return fmt.Errorf("%w: %d bytes left over", errMsgCodec, len(d.b))
	}
	if len(raw) == 0 {
		return fmt.Errorf("%w: raw record without a header", errMsgCodec)
	}
	id := r.MessageID
	r.Raw = raw
	_ = r.Deepen() // a partly unreadable header was stored as it came
	if r.MessageID != id {
		// Cannot happen for what encodeRaw wrote (ParseShallow's id is
		// ParseHeader's); keep the id the record is stored under.
		r.MessageID, r.SyntheticID = id, false
	}
	return nil
}

// decodeRecord reads a stored message record, binary (either form) or
// (schema 1) JSON.
func decodeRecord(v []byte, r *message.Record) error {
	if len(v) > 0 && v[0] == '{' {
		return json.Unmarshal(v, r)
	}
	if len(v) > 0 && v[0] == msgCodecRaw {
		return decodeRaw(v, r)
	}
	if len(v) == 0 || v[0] != msgCodecV1 {
		return fmt.Errorf("%w: unknown encoding %d", errMsgCodec, firstByte(v))
	}
	d := decoder{b: v[1:]}
	*r = message.Record{}
	d.head(r)
	flags := d.byte()
	if flags&^7 != 0 && d.err == nil {
		d.err = fmt.Errorf("%w: unknown flags %#x", errMsgCodec, flags)
	}
	r.SyntheticID, r.HasBody = flags&1 != 0, flags&2 != 0
	r.InReplyTo = d.strs()
	r.References = d.strs()
	for _, as := range []*[]message.Address{&r.From, &r.Sender, &r.ReplyTo, &r.To, &r.Cc, &r.Bcc} {
		if n := d.count(); n > 0 {
			*as = make([]message.Address, n)
			for i := range *as {
				(*as)[i] = message.Address{Name: d.str(), Addr: d.str()}
			}
		}
	}
	r.Subject = d.str()
	d.seen(r)
	if n := d.count(); n > 0 {
		r.Headers = make(map[string]string, n)
		for range n {
			k := d.str()
			r.Headers[k] = d.str()
		}
	}
	r.Attachments = d.attachments()
	if flags&4 != 0 {
		rep := &message.Report{}
		if n := d.count(); n > 0 {
			rep.Recipients = make([]message.DSNRecipient, n)
			for i := range rep.Recipients {
				rep.Recipients[i] = message.DSNRecipient{FinalRecipient: d.str(), Action: d.str(), Status: d.str(), Diagnostic: d.str()}
			}
		}
		rep.OriginalMessageID = d.str()
		rep.OriginalTo = d.strs()
		r.Report = rep
	}
	if d.err != nil {
		return d.err
	}
	if len(d.b) != 0 {
		return fmt.Errorf("%w: %d bytes left over", errMsgCodec, len(d.b))
	}
	return nil
}

// appendHead writes what both forms start with: where the message was
// seen and its Message-ID.
func appendHead(b []byte, r *message.Record) []byte {
	b = appendStr(b, r.Account)
	b = appendStr(b, r.Mailbox)
	b = append(b, byte(r.Role))
	b = binary.AppendUvarint(b, uint64(r.UIDValidity))
	b = binary.AppendUvarint(b, uint64(r.UID))
	return appendStr(b, r.MessageID)
}

// head reads what appendHead wrote.
func (d *decoder) head(r *message.Record) {
	r.Account = d.str()
	r.Mailbox = d.str()
	r.Role = message.Role(d.byte())
	r.UIDValidity = d.u32()
	r.UID = d.u32()
	r.MessageID = d.str()
}

func appendAttachments(b []byte, as []message.Attachment) []byte {
	b = binary.AppendUvarint(b, uint64(len(as)))
	for _, a := range as {
		b = appendStr(b, a.Filename)
		b = appendStr(b, a.ContentType)
	}
	return b
}

func (d *decoder) attachments() []message.Attachment {
	n := d.count()
	if n == 0 {
		return nil
	}
	as := make([]message.Attachment, n)
	for i := range as {
		as[i] = message.Attachment{Filename: d.str(), ContentType: d.str()}
	}
	return as
}

func firstByte(v []byte) int {
	if len(v) == 0 {
		return -1
	}
	return int(v[0])
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendStrs keeps nil and empty apart (0 is nil, n+1 is n strings), so a
// record reads back exactly as it was written.
func appendStrs(b []byte, ss []string) []byte {
	if ss == nil {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(ss))+1)
	for _, s := range ss {
		b = appendStr(b, s)
	}
	return b
}

func appendTime(b []byte, t time.Time) ([]byte, error) {
	tb, err := t.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("encode time %v: %w", t, err)
	}
	b = binary.AppendUvarint(b, uint64(len(tb)))
	return append(b, tb...), nil
}

// decoder reads the binary form; the first error sticks and every later
// read returns zero values.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated %s", errMsgCodec, what)
	}
	d.b = nil
}

func (d *decoder) uvarint(what string) uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail("byte")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) u32() uint32 {
	v := d.uvarint("uint32")
	if v > 1<<32-1 {
		d.fail("uint32")
		return 0
	}
	return uint32(v)
}

// count reads a count no larger than what is left (each item takes at
// least one byte), so a corrupt count cannot ask for a huge allocation.
func (d *decoder) count() int {
	v := d.uvarint("count")
	if v > uint64(len(d.b)) {
		d.fail("list")
		return 0
	}
	return int(v)
}

func (d *decoder) bytes(what string) []byte {
	n := d.uvarint(what)
	if n > uint64(len(d.b)) {
		d.fail(what)
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string { return string(d.bytes("string")) }

func (d *decoder) strs() []string {
	v := d.uvarint("list")
	if v == 0 {
		return nil
	}
	n := v - 1
	if n > uint64(len(d.b)) {
		d.fail("list")
		return nil
	}
	ss := make([]string, n)
	for i := range ss {
		ss[i] = d.str()
	}
	return ss
}

func (d *decoder) time() time.Time {
	var t time.Time
	if tb := d.bytes("time"); d.err == nil {
		if err := t.UnmarshalBinary(tb); err != nil {
			d.fail("time")
		}
	}
	return t
}

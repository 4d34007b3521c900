package store

import (
	"encoding/binary"
	"fmt"
	"time"
)

// schemaVersion is the on-disk layout this code reads and writes. Open
// refuses a file with a newer version; an older one would be migrated here.
// 2: message records in the binary form of msgcodec.go (schema 1's JSON
// records are still read as they are; Open only rewrites the version).
// 3: new message records go to msgrec under a sequence number, and msg
// holds a reference to them (msgref.go); records stored inline in msg by
// schemas 1 and 2 are still read as they are.
const schemaVersion = 3

// Bucket names. Every top-level bucket is listed in allBuckets; Open
// creates the missing ones in a fresh file. See doc.go for each layout.
var (
	bucketMeta     = []byte("meta")      // "schema" -> uint32 BE
	bucketKV       = []byte("kv")        // Meta/PutMeta: string -> bytes
	bucketMsg      = []byte("msg")       // message id -> msgref (schema 3) or an inline message.Record (schemas 1, 2)
	bucketMsgRec   = []byte("msgrec")    // sequence u64 -> message.Record (no Body), msgcodec.go; append-only
	bucketMsgLoc   = []byte("msgloc")    // folderKey|uidvalidity|uid -> message id
	bucketSync     = []byte("sync")      // folderKey -> JSON SyncState
	bucketFU       = []byte("fu")        // id -> JSON FollowUp; the bucket sequence assigns ids
	bucketFUMsgID  = []byte("fu_msgid")  // tracked message id -> id (unique)
	bucketFUThread = []byte("fu_thread") // own reminder id -> id (only grows)
	bucketFUDue    = []byte("fu_due")    // dueKey(due, id) -> empty; pending follow-ups only
	bucketFUState  = []byte("fu_state")  // state|id -> empty
	bucketFURcpt   = []byte("fu_rcpt")   // addr|0|id -> empty
	bucketFUDomain = []byte("fu_domain") // domain|0|id -> empty
	bucketLedger   = []byte("ledger")    // id|step|attempt -> JSON LedgerEntry
	bucketAway     = []byte("away")      // addr -> JSON away
	bucketIn       = []byte("in")        // incoming message id -> JSON Incoming
	bucketInThread = []byte("in_thread") // cited id|0|incoming id -> empty
	bucketInFrom   = []byte("in_from")   // sender addr|0|time|incoming id -> empty
)

// allBuckets is every top-level bucket, in creation order.
var allBuckets = [][]byte{
	bucketMeta, bucketKV, bucketMsg, bucketMsgLoc, bucketSync, bucketFU,
	bucketFUMsgID, bucketFUThread, bucketFUDue, bucketFUState, bucketFURcpt,
	bucketFUDomain, bucketLedger, bucketAway, bucketIn, bucketInThread, bucketInFrom,
	bucketMsgRec,
}

var keySchema = []byte("schema")

// u64 encodes an id big-endian, so byte order is numeric order.
func u64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

// timeKeyLen is the width of an encoded time: 8 bytes of Unix seconds with
// the sign bit flipped (so negative years still sort first) and 4 bytes of
// nanoseconds. Any time.Time fits, including the zero time.
const timeKeyLen = 12

func putTime(b []byte, t time.Time) {
	t = t.UTC()
	binary.BigEndian.PutUint64(b[0:8], uint64(t.Unix())^(1<<63))
	binary.BigEndian.PutUint32(b[8:12], uint32(t.Nanosecond()))
}

func getTime(b []byte) time.Time {
	sec := int64(binary.BigEndian.Uint64(b[0:8]) ^ (1 << 63))
	nsec := int64(binary.BigEndian.Uint32(b[8:12]))
	return time.Unix(sec, nsec).UTC()
}

// dueKey orders pending follow-ups by due time, then id, so a cursor walks
// them in firing order and Seek(timeKey(now)) finds the next one due.
func dueKey(due time.Time, id uint64) []byte {
	b := make([]byte, timeKeyLen+8)
	putTime(b, due)
	binary.BigEndian.PutUint64(b[timeKeyLen:], id)
	return b
}

func parseDueKey(k []byte) (time.Time, uint64, error) {
	if len(k) != timeKeyLen+8 {
		return time.Time{}, 0, fmt.Errorf("store: due key of %d bytes, want %d", len(k), timeKeyLen+8)
	}
	return getTime(k), binary.BigEndian.Uint64(k[timeKeyLen:]), nil
}

func stateKey(s State, id uint64) []byte {
	b := make([]byte, 9)
	b[0] = byte(s)
	binary.BigEndian.PutUint64(b[1:], id)
	return b
}

// addrKey is name|0x00|id. A lookup accepts only keys of exactly
// len(name)+9 bytes under the prefix name|0x00, so no name can shadow another
// even if it contains a NUL.
func addrKey(name string, id uint64) []byte {
	b := make([]byte, 0, len(name)+9)
	b = append(b, name...)
	b = append(b, 0)
	return append(b, u64(id)...)
}

func addrPrefix(name string) []byte {
	b := make([]byte, 0, len(name)+1)
	b = append(b, name...)
	return append(b, 0)
}

// folderKey is len16|account|len16|mailbox: length-prefixed, so any bytes
// in the names are safe and one folder's keys are a contiguous range.
func folderKey(account, mailbox string) ([]byte, error) {
	if len(account) > 0xffff || len(mailbox) > 0xffff {
		return nil, fmt.Errorf("store: account or mailbox name longer than 65535 bytes (account %.40q, mailbox %.40q)", account, mailbox)
	}
	b := make([]byte, 0, 4+len(account)+len(mailbox)+8)
	b = binary.BigEndian.AppendUint16(b, uint16(len(account)))
	b = append(b, account...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(mailbox)))
	return append(b, mailbox...), nil
}

// locKey is folderKey|uidvalidity|uid.
func locKey(account, mailbox string, uidvalidity, uid uint32) ([]byte, error) {
	b, err := folderKey(account, mailbox)
	if err != nil {
		return nil, err
	}
	b = binary.BigEndian.AppendUint32(b, uidvalidity)
	return binary.BigEndian.AppendUint32(b, uid), nil
}

// ledgerKey is id|step|attempt: one entry per intent, so a rolled-back
// attempt and its retry both stay in the ledger; the last attempt of a step
// is its current entry.
func ledgerKey(id uint64, step int, attempt uint32) []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint64(b[0:8], id)
	binary.BigEndian.PutUint32(b[8:12], uint32(step))
	binary.BigEndian.PutUint32(b[12:16], attempt)
	return b
}

func ledgerStepPrefix(id uint64, step int) []byte {
	return ledgerKey(id, step, 0)[:12]
}

func parseLedgerKey(k []byte) (id uint64, step int, attempt uint32, err error) {
	if len(k) != 16 {
		return 0, 0, 0, fmt.Errorf("store: ledger key of %d bytes, want 16", len(k))
	}
	return binary.BigEndian.Uint64(k[0:8]), int(binary.BigEndian.Uint32(k[8:12])), binary.BigEndian.Uint32(k[12:16]), nil
}

package store

import (
	"bytes"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Since schema 3 a message record lives in bucket msgrec under a sequence
// number, and bucket msg maps its Message-ID to a msgref: refMarker and the
// 8-byte big-endian sequence.
//
// Why: Message-IDs are random, so a batch of new records lands on as many
// pages of a Message-ID-keyed bucket as it has records (up to all of
// them), and a commit writes each such page whole. With the records
// appended in sequence order their pages are written once, and only the
// small references go in at random: in a first sync of 100,000 messages
// the store's share fell by about half (bench/NOTES.md).
//
// A value in msg that is not a msgref is a record stored inline by schema 1
// (JSON, starting with '{') or 2 (binary, starting with msgCodecV1); both
// are read as they are and rewritten inline when their flags change.
const refMarker byte = 0xff

const msgRefLen = 1 + 8

func isMsgRef(v []byte) bool { return len(v) == msgRefLen && v[0] == refMarker }

// recordBytes resolves a msg value to the encoded record.
func recordBytes(tx *bolt.Tx, v []byte) ([]byte, error) {
	if !isMsgRef(v) {
		return v, nil
	}
	rec := tx.Bucket(bucketMsgRec).Get(v[1:])
	if rec == nil {
		return nil, fmt.Errorf("%w: record %d missing", ErrInvalid, binary.BigEndian.Uint64(v[1:]))
	}
	return rec, nil
}

// putNewRecord appends the encoded record v and points id at it.
func putNewRecord(tx *bolt.Tx, id, v []byte) error {
	recs := tx.Bucket(bucketMsgRec)
	// Append-only: pages filled before they split, not halved.
	recs.FillPercent = 1.0
	seq, err := recs.NextSequence()
	if err != nil {
		return err
	}
	ref := make([]byte, msgRefLen)
	ref[0] = refMarker
	binary.BigEndian.PutUint64(ref[1:], seq)
	if err := recs.Put(ref[1:], v); err != nil {
		return err
	}
	return tx.Bucket(bucketMsg).Put(id, ref)
}

// rewriteRecord replaces the record of id (whose msg value is old) by v,
// where it is: in msgrec for a reference, inline otherwise.
func rewriteRecord(tx *bolt.Tx, id, old, v []byte) error {
	if isMsgRef(old) {
		return tx.Bucket(bucketMsgRec).Put(bytes.Clone(old[1:]), v)
	}
	return tx.Bucket(bucketMsg).Put(id, v)
}

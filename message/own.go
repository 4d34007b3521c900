package message

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// OwnPrefix starts the local part of every Message-ID followupd writes.
// Recognising it is how a reminder synced back from Sent is never taken for a
// new offer or for the client's answer (DESIGN invariant 3).
const OwnPrefix = "followupd."

// OwnHeader is set on every message followupd writes; its value is
// "id=<follow-up id>; step=<n>".
const OwnHeader = "X-Followupd"

// NewOwnMessageID returns a fresh Message-ID (without <>) for step of
// follow-up fuID, in the sender's domain.
func NewOwnMessageID(domain string, fuID uint64, step int) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	if domain == "" {
		domain = "followupd.invalid"
	}
	return fmt.Sprintf("%s%d.%d.%s@%s", OwnPrefix, fuID, step, hex.EncodeToString(b[:]), domain)
}

// ParseOwnMessageID reports the follow-up and step an own Message-ID names.
func ParseOwnMessageID(id string) (fuID uint64, step int, ok bool) {
	if !strings.HasPrefix(id, OwnPrefix) {
		return 0, 0, false
	}
	parts := strings.SplitN(strings.TrimPrefix(id, OwnPrefix), ".", 3)
	if len(parts) < 3 {
		return 0, 0, false
	}
	f, err1 := strconv.ParseUint(parts[0], 10, 64)
	s, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return f, s, true
}

// IsOwn reports whether followupd wrote this message: its Message-ID carries
// OwnPrefix or it has the OwnHeader.
func (r *Record) IsOwn() bool {
	if strings.HasPrefix(r.MessageID, OwnPrefix) {
		return true
	}
	_, ok := r.Headers[OwnHeader]
	return ok
}

package imapwatch

import (
	"context"
	"sync"
)

// DefaultDialConcurrency is how many connections a DialLimiter lets dial
// and log in at once when NewDialLimiter is given no positive number.
//
// Dovecot's imap-login runs one process per login by default
// (process_limit 100) and resets the connections above it; a daemon of
// 1,000 accounts dialling its 2,000 folder connections at once lost most
// of them and took 56.7 s to be ready instead of 12 (bench/NOTES.md). 32
// keeps well under that limit and still logs in hundreds of connections
// per second on a LAN.
const DefaultDialConcurrency = 32

// DialLimiter bounds how many connections are between connect and the end
// of LOGIN at once, across everything that shares it: create one per
// process and hand it to every Watcher (Options.DialLimiter) and every
// one-off Dial (DialOptions.Limiter). A slot is held from before the TCP
// connect until Dial returns; an established connection holds none. A nil
// *DialLimiter limits nothing.
type DialLimiter struct {
	slots chan struct{}
}

// NewDialLimiter returns a limiter of n concurrent dials
// (DefaultDialConcurrency when n <= 0).
func NewDialLimiter(n int) *DialLimiter {
	if n <= 0 {
		n = DefaultDialConcurrency
	}
	return &DialLimiter{slots: make(chan struct{}, n)}
}

// Acquire waits for a slot until ctx ends (then it returns ctx's error).
// release gives the slot back; calling it more than once is harmless.
func (l *DialLimiter) Acquire(ctx context.Context) (release func(), err error) {
	if l == nil {
		return func() {}, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	select {
	case l.slots <- struct{}{}:
		return sync.OnceFunc(func() { <-l.slots }), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Cap is the number of slots (0 for a nil limiter: no limit).
func (l *DialLimiter) Cap() int {
	if l == nil {
		return 0
	}
	return cap(l.slots)
}

// InUse is the number of slots held now.
func (l *DialLimiter) InUse() int {
	if l == nil {
		return 0
	}
	return len(l.slots)
}

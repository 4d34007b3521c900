package daemon_test

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"sync"
	"testing"
)

// imapProxy is a TCP proxy in front of the test IMAP server that misbehaves
// on request, for the races the in-memory server cannot stage by itself:
//
//   - Freeze holds every connection open at that moment (the watchers'
//     IDLE connections): nothing more passes on them until Unfreeze, so the
//     daemon's watcher does not see a change while the daemon's short-lived
//     connections (approve, the draft checks) work normally.
//   - DropAppendReply loses the reply to the next APPEND: the server has
//     stored the message, then the connection breaks before the client
//     hears "OK", as a timeout or a network failure would.
//   - SetRefuse closes new connections at once (the server is unreachable);
//     DropAppendReply(n, true) starts refusing right after a lost reply.
type imapProxy struct {
	t      *testing.T
	ln     net.Listener
	target string

	mu         sync.Mutex
	conns      map[*proxyConn]struct{}
	frozen     []*proxyConn
	dropAppend int  // APPEND replies still to lose
	thenRefuse bool // refuse new connections after losing one
	refuse     bool
	dropped    chan struct{} // one value per lost reply
}

type proxyConn struct {
	client, server net.Conn
	gate           sync.Mutex // held while frozen; each forwarded write takes it
}

func newIMAPProxy(t *testing.T, target string) *imapProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &imapProxy{t: t, ln: ln, target: target, conns: map[*proxyConn]struct{}{}, dropped: make(chan struct{}, 16)}
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *imapProxy) Addr() string { return p.ln.Addr().String() }

func (p *imapProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse := p.refuse
		p.mu.Unlock()
		if refuse {
			_ = c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		pc := &proxyConn{client: c, server: s}
		p.mu.Lock()
		p.conns[pc] = struct{}{}
		p.mu.Unlock()
		go p.toServer(pc)
		go p.toClient(pc)
	}
}

func (p *imapProxy) toServer(pc *proxyConn) {
	defer p.drop(pc)
	buf := make([]byte, 32<<10)
	for {
		n, err := pc.client.Read(buf)
		if n > 0 && !pc.forward(pc.server, buf[:n]) {
			return
		}
		if err != nil {
			return
		}
	}
}

// toClient forwards the server's lines, losing the tagged OK of an APPEND
// while DropAppendReply asks for it (the connection breaks instead).
func (p *imapProxy) toClient(pc *proxyConn) {
	defer p.drop(pc)
	r := bufio.NewReader(pc.server)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			if bytes.Contains(line, []byte(" OK ")) && bytes.Contains(line, []byte("APPEND completed")) && p.takeDrop() {
				p.t.Logf("imap proxy: lost the reply %q", bytes.TrimSpace(line))
				p.dropped <- struct{}{}
				return
			}
			if !pc.forward(pc.client, line) {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (pc *proxyConn) forward(w net.Conn, b []byte) bool {
	pc.gate.Lock()
	defer pc.gate.Unlock()
	_, err := w.Write(b)
	return err == nil
}

func (p *imapProxy) takeDrop() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dropAppend == 0 {
		return false
	}
	p.dropAppend--
	p.refuse = p.refuse || p.thenRefuse
	return true
}

func (p *imapProxy) drop(pc *proxyConn) {
	_ = pc.client.Close()
	_ = pc.server.Close()
	p.mu.Lock()
	delete(p.conns, pc)
	p.mu.Unlock()
}

// DropAppendReply loses the replies of the next n APPENDs; with
// thenRefuse, new connections are refused from the first lost reply on.
func (p *imapProxy) DropAppendReply(n int, thenRefuse bool) {
	p.mu.Lock()
	p.dropAppend += n
	p.thenRefuse = thenRefuse
	p.mu.Unlock()
}

// SetRefuse makes the proxy close new connections at once (true) or
// serve them again (false).
func (p *imapProxy) SetRefuse(refuse bool) {
	p.mu.Lock()
	p.refuse = refuse
	p.mu.Unlock()
}

// Freeze holds every connection open now; it returns how many.
func (p *imapProxy) Freeze() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for pc := range p.conns {
		pc.gate.Lock()
		p.frozen = append(p.frozen, pc)
	}
	return len(p.frozen)
}

// Unfreeze lets the frozen connections go on.
func (p *imapProxy) Unfreeze() {
	p.mu.Lock()
	frozen := p.frozen
	p.frozen = nil
	p.mu.Unlock()
	for _, pc := range frozen {
		pc.gate.Unlock()
	}
}

func (p *imapProxy) close() {
	p.Unfreeze()
	if err := p.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		p.t.Log(err)
	}
	p.mu.Lock()
	var all []*proxyConn
	for pc := range p.conns {
		all = append(all, pc)
	}
	p.mu.Unlock()
	for _, pc := range all {
		_ = pc.client.Close()
		_ = pc.server.Close()
	}
}

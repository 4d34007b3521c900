package mailtest

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy is a TCP proxy on 127.0.0.1 the test controls, to break the
// daemon's connections without restarting a server.
type Proxy struct {
	target string
	ln     net.Listener
	wg     sync.WaitGroup

	mu     sync.Mutex
	paused bool
	closed bool
	live   map[net.Conn]bool // both ends of every proxied connection
}

// NewProxy listens on a free loopback port and forwards each connection to
// target. t.Cleanup closes it and every connection.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mailtest: proxy listen: %v", err)
	}
	p := &Proxy{target: target, ln: ln, live: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

// Addr is the proxy's address, for the client under test.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut closes every live connection, both sides, at once.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.live {
		c.Close()
	}
}

// Pause(true) makes the proxy refuse new connections (accepted, then reset
// at once) until Pause(false). Live connections are untouched; Cut them.
func (p *Proxy) Pause(paused bool) {
	p.mu.Lock()
	p.paused = paused
	p.mu.Unlock()
}

func (p *Proxy) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.ln.Close()
	p.Cut()
	p.wg.Wait()
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse := p.paused || p.closed
		p.mu.Unlock()
		if refuse {
			reset(c)
			continue
		}
		p.wg.Add(1)
		go p.forward(c)
	}
}

// reset closes c with an RST rather than a FIN, as a refused or broken
// connection looks.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

func (p *Proxy) forward(client net.Conn) {
	defer p.wg.Done()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		reset(client)
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		client.Close()
		server.Close()
		return
	}
	p.live[client], p.live[server] = true, true
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.live, client)
		delete(p.live, server)
		p.mu.Unlock()
	}()

	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, err := io.Copy(dst, src)
		if err == nil || errors.Is(err, net.ErrClosed) {
			// Pass a half-close on, so a QUIT/LOGOUT finishes cleanly.
			if tc, ok := dst.(*net.TCPConn); ok {
				tc.CloseWrite()
			}
		}
		done <- struct{}{}
	}
	go pipe(server, client)
	go pipe(client, server)
	// Both directions end on their own (a half-close is passed on); Cut and
	// cleanup end them by force.
	<-done
	<-done
	client.Close()
	server.Close()
}

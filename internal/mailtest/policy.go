package mailtest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
)

// policyServer answers Postfix's policy delegation protocol (one
// "name=value" line per attribute, an empty line ends a request, the answer
// is "action=...\n\n") from a per-recipient table the test sets.
type policyServer struct {
	ln net.Listener
	wg sync.WaitGroup

	mu      sync.Mutex
	actions map[string]string // lowercased recipient -> action
	conns   map[net.Conn]bool
	closed  bool
}

func startPolicy() (*policyServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening for the policy server: %w", err)
	}
	p := &policyServer{ln: ln, actions: map[string]string{}, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

func (p *policyServer) Addr() string { return p.ln.Addr().String() }

func (p *policyServer) set(rcpt, action string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	rcpt = strings.ToLower(strings.TrimSpace(rcpt))
	if action == "" {
		delete(p.actions, rcpt)
		return
	}
	p.actions[rcpt] = action
}

func (p *policyServer) action(rcpt string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if a, ok := p.actions[strings.ToLower(rcpt)]; ok {
		return a
	}
	return "DUNNO"
}

// serve is the accept loop; each connection gets a goroutine.
func (p *policyServer) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			return
		}
		p.conns[c] = true
		p.mu.Unlock()
		p.wg.Add(1)
		go p.handle(c)
	}
}

func (p *policyServer) handle(c net.Conn) {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
		c.Close()
	}()
	r := bufio.NewReader(c)
	attrs := map[string]string{}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		if line != "" {
			if k, v, ok := strings.Cut(line, "="); ok {
				attrs[k] = v
			}
			continue
		}
		action := "DUNNO"
		if attrs["request"] == "smtpd_access_policy" && attrs["recipient"] != "" {
			action = p.action(attrs["recipient"])
		}
		if _, err := fmt.Fprintf(c, "action=%s\n\n", action); err != nil {
			return
		}
		attrs = map[string]string{}
	}
}

// Close stops accepting, closes live connections and waits for handlers.
func (p *policyServer) Close() error {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	err := p.ln.Close()
	p.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// SetPolicy makes Postfix answer RCPT TO:<rcpt> on the MX and submission
// ports with action: "451 4.7.1 try later", "550 5.1.1 no such user", any
// other Postfix access(5) action, or "" for DUNNO (the normal path). It
// takes effect at the next RCPT, without reloading Postfix.
func (s *Stack) SetPolicy(rcpt string, action string) {
	s.policy.set(rcpt, action)
}

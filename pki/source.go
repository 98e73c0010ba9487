package pki

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"
)

// Source hands out a workload's current credentials. A TLS config built on
// one (ServerConfig, ClientConfig) asks it at every handshake, so a renewed
// certificate is used from the next connection on while open connections,
// and the streams on them, carry on.
type Source interface {
	Bundle() (*Bundle, error)
}

// Static is a Source that never changes.
type Static struct{ B *Bundle }

// Bundle returns the bundle.
func (s Static) Bundle() (*Bundle, error) { return s.B, nil }

// Issuer is a Source that issues its own certificate from a CA it holds
// and renews it once two thirds of its life have passed: the control plane
// itself, and kgate local's components.
type Issuer struct {
	ca  func() *CA
	req Request
	now func() time.Time

	mu  sync.Mutex
	cur *Bundle
}

// NewIssuer returns a Source of certificates for r from the CA that ca
// returns (a function, so that a replaced CA is used from the next
// renewal on). now is the clock (time.Now when nil).
func NewIssuer(ca func() *CA, r Request, now func() time.Time) *Issuer {
	if now == nil {
		now = time.Now
	}
	return &Issuer{ca: ca, req: r, now: now}
}

// Bundle returns the current certificate, renewing it when due.
func (s *Issuer) Bundle() (*Bundle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.cur != nil && !RenewalDue(s.cur, now) {
		return s.cur, nil
	}
	r := s.req
	r.Now = now
	ca := s.ca()
	if ca == nil {
		return nil, errors.New("no CA to issue the certificate from yet")
	}
	b, err := ca.Issue(r)
	if err != nil {
		if s.cur != nil && now.Before(s.cur.NotAfter()) {
			return s.cur, nil // still valid: try again at the next handshake
		}
		return nil, err
	}
	s.cur = b
	return b, nil
}

// RenewalDue says whether b has passed two thirds of its life, or is not
// valid at now at all.
func RenewalDue(b *Bundle, now time.Time) bool {
	life := b.NotAfter().Sub(b.NotBefore())
	return now.Before(b.NotBefore()) || !now.Before(b.NotBefore().Add(life*2/3))
}

// Dir is a Source reading a folder of CAFile, CertFile and KeyFile, as a
// mounted Kubernetes Secret or `kgate local` writes them. It reads them
// again when they change, so a rotated Secret is picked up without a
// restart; a half-written or invalid set keeps the last good bundle.
type Dir struct {
	path string
	// every bounds how often the files are looked at.
	every time.Duration
	now   func() time.Time

	mu      sync.Mutex
	cur     *Bundle
	checked time.Time
	lastErr error
}

// NewDir reads dir once, failing if the credentials there are not usable.
func NewDir(dir string) (*Dir, error) {
	b, err := ReadBundle(dir)
	if err != nil {
		return nil, err
	}
	return &Dir{path: dir, every: time.Second, now: time.Now, cur: b, checked: time.Now()}, nil
}

// Path is the folder read.
func (d *Dir) Path() string { return d.path }

// Bundle returns the newest valid bundle in the folder.
func (d *Dir) Bundle() (*Bundle, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	if now.Sub(d.checked) < d.every {
		return d.cur, nil
	}
	d.checked = now
	if !d.changed() {
		return d.cur, nil
	}
	b, err := ReadBundle(d.path)
	if err != nil {
		d.lastErr = err
		return d.cur, nil
	}
	d.cur, d.lastErr = b, nil
	return d.cur, nil
}

// Err is why the files last failed to load, nil when the bundle in use is
// the one on disk.
func (d *Dir) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lastErr
}

// changed compares the certificate on disk with the one in use: cheap, and
// right whatever way the files were replaced (Kubernetes swaps a symlink).
func (d *Dir) changed() bool {
	b, err := readBounded(filepath.Join(d.path, CertFile))
	if err != nil {
		d.lastErr = fmt.Errorf("reading credentials: %w", err)
		return false
	}
	if !bytes.Equal(b, d.cur.CertPEM) {
		return true
	}
	ca, err := readBounded(filepath.Join(d.path, CAFile))
	return err == nil && !bytes.Equal(ca, d.cur.CAPEM)
}

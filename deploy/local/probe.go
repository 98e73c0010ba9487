package local

import (
	"cmp"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Probe timing. Until a replica is first ready it is probed every
// fastPoll, as Knative's queue-proxy probes aggressively, so that a cold
// start costs the app's start time and not a probe period. The probe's
// own settings, meant for a cluster, are bounded so that a local revision
// never waits minutes on them.
const (
	fastPoll        = 50 * time.Millisecond
	defaultPeriod   = time.Second
	maxPeriod       = 10 * time.Second
	maxInitialDelay = time.Minute
	defaultTimeout  = time.Second
)

// probe checks a replica's readiness as its container's readinessProbe
// says: an HTTP GET (httpGet) or a TCP connection (tcpSocket, and the
// default), always to the replica's own port on 127.0.0.1, since locally
// that port stands for the containerPort the probe names.
type probe struct {
	http             *httpProbe // nil for TCP
	initialDelay     time.Duration
	period           time.Duration
	timeout          time.Duration
	successThreshold int
	failureThreshold int
}

type httpProbe struct {
	client *http.Client
	scheme string
	path   string
	header http.Header
}

// newProbe reads a readinessProbe; nil is a TCP probe. Exec and gRPC
// probes are not run locally: the port is probed over TCP instead, with a
// warning.
func newProbe(p *corev1.Probe, log *slog.Logger) probe {
	if p == nil {
		p = &corev1.Probe{}
	}
	pr := probe{
		initialDelay:     min(seconds(p.InitialDelaySeconds, 0), maxInitialDelay),
		period:           min(seconds(p.PeriodSeconds, defaultPeriod), maxPeriod),
		timeout:          min(seconds(p.TimeoutSeconds, defaultTimeout), maxPeriod),
		successThreshold: cmp.Or(int(p.SuccessThreshold), 1),
		failureThreshold: cmp.Or(int(p.FailureThreshold), 3), // Kubernetes' defaults
	}
	switch h := p.ProbeHandler; {
	case h.HTTPGet != nil:
		pr.http = newHTTPProbe(h.HTTPGet)
	case h.Exec != nil, h.GRPC != nil:
		log.Warn("exec and grpc readiness probes are not run locally; probing the port over TCP instead")
	}
	return pr
}

func newHTTPProbe(g *corev1.HTTPGetAction) *httpProbe {
	hp := &httpProbe{scheme: "http", path: g.Path, header: http.Header{}}
	if g.Scheme == corev1.URISchemeHTTPS {
		hp.scheme = "https"
	}
	if !strings.HasPrefix(hp.path, "/") {
		hp.path = "/" + hp.path
	}
	hp.header.Set("User-Agent", "kube-probe/kgate")
	for _, h := range g.HTTPHeaders {
		hp.header.Add(h.Name, h.Value)
	}
	hp.client = &http.Client{
		// Like the kubelet: a fresh connection per probe, any certificate
		// (the app's own, likely self-signed, on its own port), and a
		// redirect is an answer.
		Transport: &http.Transport{
			DisableKeepAlives: true,
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return hp
}

func seconds(s int32, zero time.Duration) time.Duration {
	if s <= 0 {
		return zero
	}
	return time.Duration(s) * time.Second
}

// run probes the replica on port until ctx ends, calling set each time its
// readiness changes: ready after successThreshold successes in a row, not
// ready after failureThreshold failures in a row (err is the last one).
func (p probe) run(ctx context.Context, port int, set func(ready bool, err error)) {
	if !sleep(ctx, p.initialDelay) {
		return
	}
	ready, everReady := false, false
	successes, failures := 0, 0
	for {
		err := p.check(ctx, port)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			successes, failures = successes+1, 0
		} else {
			successes, failures = 0, failures+1
		}
		switch {
		case !ready && successes >= p.successThreshold:
			ready, everReady = true, true
			set(true, nil)
		case ready && failures >= p.failureThreshold:
			ready = false
			set(false, err)
		}
		interval := p.period
		if !everReady {
			interval = fastPoll
		}
		if !sleep(ctx, interval) {
			return
		}
	}
}

// check probes once.
func (p probe) check(ctx context.Context, port int) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if p.http == nil {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return conn.Close()
	}
	return p.http.get(ctx, addr)
}

func (hp *httpProbe) get(ctx context.Context, addr string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, hp.scheme+"://"+addr+hp.path, nil)
	if err != nil {
		return err
	}
	req.Header = hp.header.Clone()
	if host := req.Header.Get("Host"); host != "" {
		req.Host = host
	}
	resp, err := hp.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	// Kubernetes: 2xx and 3xx are success.
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("GET %s answered %s", hp.path, resp.Status)
	}
	return nil
}

// sleep waits d unless ctx ends first; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

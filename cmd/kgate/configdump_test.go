package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"sigs.k8s.io/yaml"

	"github.com/kgate/kgate/dataplane/xdsclient"
	"github.com/kgate/kgate/internal/testrun"
	"github.com/kgate/kgate/pki"
	"github.com/kgate/kgate/translator/model"
	"github.com/kgate/kgate/xds"
)

// configDumpServer serves one Service with one revision over mutual TLS
// on loopback, and writes a certificate for each identity into a folder of
// its own. It returns the server's address and the folders by identity.
func configDumpServer(t *testing.T, ids ...pki.Identity) (string, map[pki.Identity]string) {
	t.Helper()
	trust, err := newLocalPKI()
	if err != nil {
		t.Fatal(err)
	}
	dirs := map[pki.Identity]string{}
	for _, id := range ids {
		dir := t.TempDir()
		if err := trust.writeBundle(id, dir); err != nil {
			t.Fatal(err)
		}
		dirs[id] = dir
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := xds.NewServer(ctx, xds.ServerOptions{TLS: trust.serverTLS()})
	eng, err := xds.NewEngine(srv, xds.EngineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Update(model.Config{
		Services: []model.Service{{Namespace: "default", Name: "hello", VirtualHosts: []model.VirtualHost{{
			Host: "hello.default.example.com", Visibility: model.External,
			Routes: []model.Route{{PathPrefix: "/", Splits: []model.Split{{Revision: "default/hello-00001", Percent: 100}}}},
		}}}},
		Revisions: []model.Revision{{Namespace: "default", Name: "hello-00001", Protocol: model.HTTP1, Timeout: 30 * time.Second}},
		Endpoints: []model.RevisionEndpoints{{Revision: "default/hello-00001", Mode: model.Serve,
			Pods: []model.Endpoint{{Address: "127.0.0.1", Port: 9}}}},
	}); err != nil {
		t.Fatal(err)
	}
	lis := testrun.Listen(t)
	testrun.Go(t, ctx, "xDS Serve", 10*time.Second, func(ctx context.Context) error { return srv.Serve(ctx, lis) })
	t.Cleanup(cancel) // before Go's cleanup: the server's context ends with Serve's
	return lis.Addr().String(), dirs
}

// runConfigDump runs `kgate config-dump` in-process, bounded in time, and
// returns what it printed and its error.
func runConfigDump(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := newRootCommand()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(append([]string{"config-dump"}, args...))
	err := cmd.ExecuteContext(ctx)
	if errOut.Len() > 0 {
		t.Errorf("config-dump wrote to stderr: %s", errOut.String())
	}
	return out.String(), err
}

var (
	dumpObserverID  = pki.Identity{Role: pki.Observer, ID: "operator-*"}
	dumpGatewayID   = pki.Identity{Role: pki.Gateway, ID: "kgate-gateway-*"}
	dumpActivatorID = pki.Identity{Role: pki.Activator, ID: "activator-test"}
)

// TestConfigDump reads a control plane with each kind of certificate and
// checks what is printed, or the one line that says why nothing is.
func TestConfigDump(t *testing.T) {
	addr, dirs := configDumpServer(t, dumpObserverID, dumpGatewayID, dumpActivatorID)
	with := func(id pki.Identity, args ...string) []string {
		return append([]string{"--xds-address", addr, "--xds-tls-dir", dirs[id]}, args...)
	}
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, out string) // for success
		// wantErr are parts of the one-line error; none for success.
		wantErr []string
		// within bounds how long a failure may take: refusals are not
		// waited out.
		within time.Duration
	}{
		{
			name:  "an observer reads every type as JSON",
			args:  with(dumpObserverID),
			check: checkDumpJSON([]string{resource.ListenerType, resource.ScopedRouteType, resource.RouteType, resource.ClusterType, resource.EndpointType}),
		},
		{
			name: "an observer's YAML holds the same",
			args: with(dumpObserverID, "-o", "yaml"),
			check: func(t *testing.T, out string) {
				js, err := yaml.YAMLToJSON([]byte(out))
				if err != nil {
					t.Fatalf("not YAML: %v\n%s", err, out)
				}
				checkDumpJSON([]string{resource.ListenerType, resource.ScopedRouteType, resource.RouteType, resource.ClusterType, resource.EndpointType})(t, string(js))
			},
		},
		{
			name: "a summary names each resource and counts each type",
			args: with(dumpObserverID, "-o", "summary"),
			check: func(t *testing.T, out string) {
				lines := strings.Split(strings.TrimSpace(out), "\n")
				if got := strings.Fields(lines[0]); !reflect.DeepEqual(got, []string{"TYPE", "NAME", "VERSION"}) {
					t.Errorf("header %q", lines[0])
				}
				for _, want := range [][]string{{"CDS", "default/hello-00001"}, {"EDS", "default/hello-00001"}, {"RDS", "external/default/hello"}} {
					if !dumpHasRow(lines, want) {
						t.Errorf("no row %q in\n%s", want, out)
					}
				}
				// The counts are those of the rows, every type named.
				rows := map[string]int{}
				for _, l := range lines[1 : len(lines)-2] {
					rows[strings.Fields(l)[0]]++
				}
				want := fmt.Sprintf("LDS %d, SRDS %d, RDS %d, CDS %d, EDS %d", rows["LDS"], rows["SRDS"], rows["RDS"], rows["CDS"], rows["EDS"])
				if last := lines[len(lines)-1]; last != want || lines[len(lines)-2] != "" {
					t.Errorf("counts %q; want %q after a blank line", last, want)
				}
			},
		},
		{
			name:  "--type limits what is read",
			args:  with(dumpObserverID, "--type", "cds", "--type", "EDS"),
			check: checkDumpJSON([]string{resource.ClusterType, resource.EndpointType}),
		},
		{
			name:  "a gateway's certificate reads too, with a node id it names",
			args:  with(dumpGatewayID),
			check: checkDumpJSON([]string{resource.ListenerType, resource.ScopedRouteType, resource.RouteType, resource.ClusterType, resource.EndpointType}),
		},
		{
			name:  "an activator's certificate reads clusters and endpoints",
			args:  with(dumpActivatorID, "--type", "cds,eds"),
			check: checkDumpJSON([]string{resource.ClusterType, resource.EndpointType}),
		},
		{
			name: "an activator's certificate may not read listeners",
			args: with(dumpActivatorID),
			wantErr: []string{"refused the certificate in", "activator/activator-test",
				"may not receive " + resource.ListenerType + " (lds)", "may read cds, eds (--type cds,eds)", "needs an observer certificate"},
			within: 5 * time.Second,
		},
		{
			name:    "a node id the certificate does not name is refused before connecting",
			args:    with(dumpObserverID, "--node-id", "someone"),
			wantErr: []string{`--node-id "someone"`, "names observer/operator-*"},
			within:  time.Second,
		},
		{
			name:    "no certificate",
			args:    []string{"--xds-address", addr, "--xds-tls-dir", filepath.Join(t.TempDir(), "absent")},
			wantErr: []string{"--xds-tls-dir", "no such file", "needs an observer certificate", "--observer-tls-dir"},
			within:  time.Second,
		},
		{
			name:    "plaintext to a TLS server: no response, the types and the handshake named",
			args:    []string{"--xds-address", addr, "--plaintext", "--type", "cds", "--timeout", "700ms"},
			wantErr: []string{"no response of cds (" + resource.ClusterType + ")", "within --timeout 700ms", "Unavailable"},
			within:  5 * time.Second,
		},
		{
			name:    "an unknown type",
			args:    with(dumpObserverID, "--type", "sds"),
			wantErr: []string{`--type "sds": must be lds, srds, rds, cds or eds`},
			within:  time.Second,
		},
		{
			name:    "an unknown output",
			args:    with(dumpObserverID, "-o", "table"),
			wantErr: []string{`--output "table"`},
			within:  time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			out, err := runConfigDump(t, tt.args...)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("config-dump: %v", err)
				}
				tt.check(t, out)
				return
			}
			if err == nil {
				t.Fatalf("config-dump succeeded; want an error with %q\n%s", tt.wantErr, out)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("the error is not one line: %q", msg)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q lacks %q", msg, want)
				}
			}
			if took := time.Since(start); took > tt.within {
				t.Errorf("failing took %s; want within %s", took.Round(time.Millisecond), tt.within)
			}
			if out != "" {
				t.Errorf("printed %q besides the error", out)
			}
		})
	}
}

// TestConfigDumpIsStable: the same config prints the same bytes, so that
// two dumps can be diffed.
func TestConfigDumpIsStable(t *testing.T) {
	addr, dirs := configDumpServer(t, dumpObserverID)
	args := []string{"--xds-address", addr, "--xds-tls-dir", dirs[dumpObserverID]}
	first, err := runConfigDump(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	second, err := runConfigDump(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	if first != second {
		t.Errorf("two dumps of one config differ:\n%s\n---\n%s", first, second)
	}
}

// checkDumpJSON checks a JSON dump: exactly the types asked for, each
// resource with its name, version and a body of its type, sorted by name;
// the published cluster and route configuration among them; nothing
// private.
func checkDumpJSON(types []string) func(t *testing.T, out string) {
	return func(t *testing.T, out string) {
		t.Helper()
		var doc map[string][]struct {
			Name     string
			Version  string
			Resource map[string]any
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, out)
		}
		var got []string
		for typeURL, list := range doc {
			got = append(got, typeURL)
			var names []string
			for _, r := range list {
				names = append(names, r.Name)
				name := r.Resource["name"]
				if typeURL == resource.EndpointType {
					name = r.Resource["cluster_name"]
				}
				if r.Version == "" || r.Resource["@type"] != typeURL || name != r.Name {
					t.Errorf("%s %q: version %q, @type %v, name %v", typeURL, r.Name, r.Version, r.Resource["@type"], name)
				}
			}
			if !slices.IsSorted(names) {
				t.Errorf("%s: not sorted by name: %q", typeURL, names)
			}
		}
		slices.Sort(got)
		if want := slices.Sorted(slices.Values(types)); !slices.Equal(got, want) {
			t.Errorf("types %q; want %q", got, want)
		}
		has := func(typeURL, name string) {
			for _, r := range doc[typeURL] {
				if r.Name == name {
					return
				}
			}
			t.Errorf("no %s %q in\n%s", typeURL, name, out)
		}
		if _, ok := doc[resource.ClusterType]; ok {
			has(resource.ClusterType, "default/hello-00001")
		}
		if _, ok := doc[resource.RouteType]; ok {
			has(resource.RouteType, "external/default/hello")
		}
		if strings.Contains(out, "PRIVATE KEY") {
			t.Errorf("the dump holds a private key")
		}
	}
}

// slices2Contains reports whether a line starts with the fields want.
func dumpHasRow(lines []string, want []string) bool {
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) >= len(want) && reflect.DeepEqual(f[:len(want)], want) {
			return true
		}
	}
	return false
}

func TestParseDumpTypes(t *testing.T) {
	tests := []struct {
		in      []string
		want    []string // short names
		wantErr string
	}{
		{in: nil, want: []string{"lds", "srds", "rds", "cds", "eds"}},
		{in: []string{"eds", "CDS", "eds"}, want: []string{"cds", "eds"}},
		{in: []string{" rds", "lds"}, want: []string{"lds", "rds"}},
		{in: []string{"sds"}, wantErr: `--type "sds"`},
		{in: []string{resource.ClusterType}, wantErr: "must be lds, srds, rds, cds or eds"},
	}
	for _, tt := range tests {
		got, err := parseDumpTypes(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseDumpTypes(%q) = %v; want an error with %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		var short []string
		for _, d := range got {
			short = append(short, d.short)
		}
		if err != nil || !reflect.DeepEqual(short, tt.want) {
			t.Errorf("parseDumpTypes(%q) = %q, %v; want %q", tt.in, short, err, tt.want)
		}
	}
}

func TestDumpNodeID(t *testing.T) {
	tests := []struct {
		name    string
		nodeID  string
		given   bool
		id      pki.Identity
		want    string
		wantErr string
	}{
		{name: "the default fits an observer of kgate local", nodeID: "operator-host", id: dumpObserverID, want: "operator-host"},
		{name: "a given id the certificate names", nodeID: "operator-alice", given: true, id: dumpObserverID, want: "operator-alice"},
		{name: "a given id the certificate does not name", nodeID: "alice", given: true, id: dumpObserverID, wantErr: `--node-id "alice": the certificate in DIR names observer/operator-*`},
		{name: "the default becomes the wildcard's prefix", nodeID: "operator-host", id: dumpGatewayID, want: "kgate-gateway-config-dump-host"},
		{name: "the default becomes an exact id", nodeID: "operator-host", id: dumpActivatorID, want: "activator-test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dumpNodeID(tt.nodeID, tt.given, tt.id, "DIR", "host")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %q, %v; want an error with %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestDumpCollectorWaitsForQuiet: a type is complete once answered and
// then quiet for the first response's latency, within bounds, so that
// every part of a split first response is in.
func TestDumpCollectorWaitsForQuiet(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	cds, eds := dumpTypes[3], dumpTypes[4]
	type event struct {
		at      time.Time
		typeURL string
		names   []string
		removed []string
	}
	tests := []struct {
		name         string
		events       []event
		now          time.Time
		wantMissing  []string
		wantComplete bool
	}{
		{name: "nothing yet", now: ms(5000), wantMissing: []string{"cds", "eds"}},
		{name: "one type answered", events: []event{{ms(10), cds.typeURL, []string{"a"}, nil}}, now: ms(5000), wantMissing: []string{"eds"}},
		{name: "both answered, not quiet for 200 ms yet",
			events: []event{{ms(10), cds.typeURL, []string{"a"}, nil}, {ms(11), eds.typeURL, nil, nil}}, now: ms(150)},
		{name: "both answered and quiet",
			events: []event{{ms(10), cds.typeURL, []string{"a"}, nil}, {ms(11), eds.typeURL, nil, nil}}, now: ms(211), wantComplete: true},
		{name: "a second part restarts the wait",
			events: []event{{ms(10), cds.typeURL, []string{"a"}, nil}, {ms(11), eds.typeURL, nil, nil}, {ms(150), cds.typeURL, []string{"b"}, nil}}, now: ms(300)},
		{name: "a slow first response makes the wait as long",
			events: []event{{ms(900), cds.typeURL, []string{"a"}, nil}, {ms(900), eds.typeURL, nil, nil}}, now: ms(1700)},
		{name: "... and it ends",
			events: []event{{ms(900), cds.typeURL, []string{"a"}, nil}, {ms(900), eds.typeURL, nil, nil}}, now: ms(1800), wantComplete: true},
		{name: "never longer than the cap",
			events: []event{{ms(8000), cds.typeURL, []string{"a"}, nil}, {ms(8000), eds.typeURL, nil, nil}}, now: ms(10000), wantComplete: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var clock time.Time
			c := newDumpCollector([]dumpType{cds, eds}, func() time.Time { return clock })
			for _, e := range tt.events {
				clock = e.at
				u := xdsclient.Update{TypeURL: e.typeURL, Removed: e.removed}
				for _, n := range e.names {
					u.Resources = append(u.Resources, xdsclient.Resource{Name: n})
				}
				if err := c.handle(u); err != nil {
					t.Fatal(err)
				}
			}
			missing, complete := c.state(tt.now, t0)
			var short []string
			for _, m := range missing {
				short = append(short, m.short)
			}
			if !reflect.DeepEqual(short, tt.wantMissing) || complete != tt.wantComplete {
				t.Errorf("state = %q, %v; want %q, %v", short, complete, tt.wantMissing, tt.wantComplete)
			}
		})
	}
}

// TestDumpCollectorKeepsTheLatest: later parts add, removals remove, a
// type not asked for is refused, and the snapshot is sorted by name.
func TestDumpCollectorKeepsTheLatest(t *testing.T) {
	cds := dumpTypes[3]
	c := newDumpCollector([]dumpType{cds}, time.Now)
	for _, u := range []xdsclient.Update{
		{TypeURL: cds.typeURL, Resources: []xdsclient.Resource{{Name: "c", Version: "1"}, {Name: "a", Version: "1"}}},
		{TypeURL: cds.typeURL, Resources: []xdsclient.Resource{{Name: "b", Version: "1"}, {Name: "a", Version: "2"}}},
		{TypeURL: cds.typeURL, Removed: []string{"c"}},
	} {
		if err := c.handle(u); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.handle(xdsclient.Update{TypeURL: resource.SecretType}); err == nil {
		t.Error("a secret was accepted")
	}
	got := c.snapshot([]dumpType{cds})[0].resources
	want := []xdsclient.Resource{{Name: "a", Version: "2"}, {Name: "b", Version: "1"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("snapshot %+v; want %+v", got, want)
	}
}

// TestDumpRefusal: only a refusal ends the wait at once; a control plane
// out of reach is waited for until --timeout.
func TestDumpRefusal(t *testing.T) {
	observer := dumpObserverID
	cfg := configDumpConfig{address: "10.0.0.1:18000", tlsDir: "DIR", identity: &observer}
	streams := func(err error) error {
		return fmt.Errorf("xdsclient: 2 delta ADS streams in a row failed since 2026-01-01T00:00:00Z: %w", fmt.Errorf("receiving: %w", err))
	}
	tests := []struct {
		name string
		err  error
		want string // "" for no refusal
	}{
		{name: "following", err: nil},
		{name: "no response yet", err: errors.New("xdsclient: no type.googleapis.com/envoy.config.cluster.v3.Cluster response yet")},
		{name: "out of reach", err: streams(status.Error(codes.Unavailable, "connection refused"))},
		{name: "refused", err: streams(status.Error(codes.PermissionDenied, "role observer may not receive "+resource.SecretType)),
			want: "the control plane at 10.0.0.1:18000 refused the certificate in DIR (observer/operator-*): role observer may not receive " + resource.SecretType + "; role observer may read lds, srds, rds, cds, eds (--type lds,srds,rds,cds,eds); config-dump needs an observer certificate"},
		{name: "too much", err: streams(status.Error(codes.ResourceExhausted, "grpc: received message larger than max")),
			want: "reading from the control plane at 10.0.0.1:18000: receiving: rpc error: code = ResourceExhausted desc = grpc: received message larger than max"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := dumpRefusal(tt.err, cfg)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("refusal %v; want none", err)
			case tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.want)):
				t.Errorf("refusal %v;\nwant %s…", err, tt.want)
			}
		})
	}
}

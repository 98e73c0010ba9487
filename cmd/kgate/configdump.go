package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"
	"sigs.k8s.io/yaml"

	"github.com/kgate/kgate/dataplane/xdsclient"
	"github.com/kgate/kgate/pki"
	"github.com/kgate/kgate/xds/auth"
)

// dumpType is a config type config-dump reads, by the short name of its
// xDS service.
type dumpType struct{ short, typeURL string }

// dumpTypes are the types an observer may receive (xds/auth), in the order
// config-dump prints them: listeners, then what they refer to. Secrets are
// not among them, and --type cannot ask for them: an observer never gets
// private keys, and neither does this tool with any other certificate.
var dumpTypes = []dumpType{
	{"lds", resource.ListenerType},
	{"srds", resource.ScopedRouteType},
	{"rds", resource.RouteType},
	{"cds", resource.ClusterType},
	{"eds", resource.EndpointType},
}

// dumpObserverHint says where an observer certificate comes from; every error
// about the certificate ends with it.
const dumpObserverHint = "config-dump needs an observer certificate: `kgate local --observer-tls-dir DIR` writes one, `kgate certs issue --role observer --id 'operator-*'` issues one"

// Waiting for a complete first response. kgate's server may split a type's
// first delta response into parts (xds/typecache.go: 1 MiB of resources
// each) and marks none of them as the last; the next part follows one round
// trip after the client's ACK. So a type counts as complete once it has
// received a response and then nothing for a quiet period: at least
// minDumpQuiet, and as long as the first response took to come (a
// connection, a TLS handshake and a request: longer than the one round
// trip between parts, however far the control plane is), up to
// maxDumpQuiet.
const (
	minDumpQuiet = 200 * time.Millisecond
	maxDumpQuiet = 2 * time.Second
	// dumpPoll is how often the wait looks at the watches and the stream.
	dumpPoll = 20 * time.Millisecond
)

// dumpBackoff retries a failed stream within --timeout: Envoy's 30 s
// between attempts suit a gateway that runs for days, not a one-shot tool.
var dumpBackoff = xdsclient.Backoff{Initial: 200 * time.Millisecond, Max: 2 * time.Second}

// configDumpConfig is what one config-dump run needs.
type configDumpConfig struct {
	address string
	nodeID  string
	creds   credentials.TransportCredentials
	// identity is what the certificate names; nil in plaintext.
	identity *pki.Identity
	tlsDir   string
	timeout  time.Duration
	types    []dumpType
}

func newConfigDumpCommand() *cobra.Command {
	var (
		cfg       configDumpConfig
		creds     xdsClientFlags
		output    string
		typeNames []string
	)
	cmd := &cobra.Command{
		Use:   "config-dump",
		Short: "Print the config a kgate control plane serves, read with an observer certificate",
		Long: `Connects to a kgate control plane (xDS) as a read-only observer, subscribes to every
listener, scoped route, route configuration, cluster and endpoint assignment, waits for
each type's first complete response and prints them: -o json (by type URL, each resource
with its name, version and body), -o yaml, or -o summary (TYPE NAME VERSION and counts).

The certificate in --xds-tls-dir decides what may be read: an observer's (kgate local
--observer-tls-dir DIR, or kgate certs issue --role observer) reads all five types, a
gateway's too; an activator's only cds and eds (--type). Secrets are never asked for.`,
		Example: `  kgate local -f DIR --observer-tls-dir /tmp/observer    # in one terminal
  kgate config-dump --xds-tls-dir /tmp/observer -o summary
  kgate config-dump --xds-tls-dir /tmp/observer --type cds --type eds | jq .`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !slices.Contains([]string{"json", "yaml", "summary"}, output) {
				return fmt.Errorf("--output %q: must be json, yaml or summary", output)
			}
			if cfg.timeout <= 0 {
				return fmt.Errorf("--timeout %s: must be positive", cfg.timeout)
			}
			var err error
			if cfg.types, err = parseDumpTypes(typeNames); err != nil {
				return err
			}
			if cfg.creds, err = creds.credentials(cfg.address); err != nil {
				if creds.plaintext {
					return err
				}
				return fmt.Errorf("%w; %s", err, dumpObserverHint)
			}
			if !creds.plaintext {
				b, err := pki.ReadBundle(creds.tlsDir)
				if err != nil {
					return fmt.Errorf("--xds-tls-dir: %w", err)
				}
				id := b.Identity()
				cfg.identity, cfg.tlsDir = &id, creds.tlsDir
				if cfg.nodeID, err = dumpNodeID(cfg.nodeID, cmd.Flags().Changed("node-id"), id, creds.tlsDir, dumpHostname()); err != nil {
					return err
				}
			}
			dump, err := readConfigDump(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			return printConfigDump(cmd.OutOrStdout(), output, dump)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.address, "xds-address", defaultXDSAddress, "host:port of kgate's xDS server")
	creds.register(f)
	f.StringVar(&cfg.nodeID, "node-id", "operator-"+dumpHostname(), "the node id to give the xDS server (the certificate must name it); unset, one the certificate names is taken when it does not name the default")
	f.DurationVar(&cfg.timeout, "timeout", 10*time.Second, "how long to wait for each type's first response")
	f.StringVarP(&output, "output", "o", "json", "output format: json, yaml or summary")
	f.StringSliceVar(&typeNames, "type", nil, "read only these types: lds, srds, rds, cds, eds (repeatable; all when unset)")
	return cmd
}

// dumpHostname tells operators' tools apart in the control plane's logs.
func dumpHostname() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		return "unknown"
	}
	return host
}

// parseDumpTypes turns --type's short names into types, in print order;
// none means all.
func parseDumpTypes(names []string) ([]dumpType, error) {
	if len(names) == 0 {
		return dumpTypes, nil
	}
	want := map[string]bool{}
	for _, n := range names {
		n = strings.ToLower(strings.TrimSpace(n))
		if !slices.ContainsFunc(dumpTypes, func(t dumpType) bool { return t.short == n }) {
			return nil, fmt.Errorf("--type %q: must be lds, srds, rds, cds or eds", n)
		}
		want[n] = true
	}
	var types []dumpType
	for _, t := range dumpTypes {
		if want[t.short] {
			types = append(types, t)
		}
	}
	return types, nil
}

// dumpNodeID picks the node id to present. One given must be the
// certificate's: the server would refuse the stream anyway, less plainly.
// The default, operator-<host>, is what an observer certificate of kgate
// local names (operator-*); for another certificate it becomes one that
// certificate names, so that a gateway's works without --node-id: its
// prefix with config-dump-<host> for a wildcard, which shows whose stream
// it is where the control plane lists gateway nodes, or its id.
func dumpNodeID(nodeID string, given bool, id pki.Identity, dir, host string) (string, error) {
	if id.Matches(nodeID) {
		return nodeID, nil
	}
	if given {
		return "", fmt.Errorf("--node-id %q: the certificate in %s names %s; give a node id it matches", nodeID, dir, id)
	}
	if prefix, wildcard := strings.CutSuffix(id.ID, "*"); wildcard {
		return prefix + "config-dump-" + host, nil
	}
	return id.ID, nil
}

// typeDump is what config-dump read of one type, sorted by name.
type typeDump struct {
	dumpType
	resources []xdsclient.Resource
}

// dumpCollector holds what the watches received, for the wait to look at.
type dumpCollector struct {
	now func() time.Time

	mu    sync.Mutex
	types map[string]*collected
	// first is when the first response of any type arrived.
	first time.Time
}

type collected struct {
	resources map[string]xdsclient.Resource
	got       bool
	last      time.Time
}

func newDumpCollector(types []dumpType, now func() time.Time) *dumpCollector {
	c := &dumpCollector{now: now, types: map[string]*collected{}}
	for _, t := range types {
		c.types[t.typeURL] = &collected{resources: map[string]xdsclient.Resource{}}
	}
	return c
}

// handle applies one response; config-dump accepts everything the client
// could decode, since it only shows it.
func (c *dumpCollector) handle(u xdsclient.Update) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.types[u.TypeURL]
	if t == nil {
		return fmt.Errorf("config-dump did not ask for %s", u.TypeURL)
	}
	for _, r := range u.Resources {
		t.resources[r.Name] = r
	}
	for _, name := range u.Removed {
		delete(t.resources, name)
	}
	now := c.now()
	if c.first.IsZero() {
		c.first = now
	}
	t.got, t.last = true, now
	return nil
}

// state says, at now, which types have had no response yet and whether
// every type is complete: answered, then quiet for long enough (see
// minDumpQuiet). started is when the client started.
func (c *dumpCollector) state(now, started time.Time) (missing []dumpType, complete bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	quiet := minDumpQuiet
	if !c.first.IsZero() {
		quiet = min(max(c.first.Sub(started), minDumpQuiet), maxDumpQuiet)
	}
	complete = true
	for _, dt := range dumpTypes {
		t := c.types[dt.typeURL]
		switch {
		case t == nil:
		case !t.got:
			missing = append(missing, dt)
			complete = false
		case now.Sub(t.last) < quiet:
			complete = false
		}
	}
	return missing, complete
}

// snapshot returns what was received, in print order.
func (c *dumpCollector) snapshot(types []dumpType) []typeDump {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]typeDump, 0, len(types))
	for _, dt := range types {
		res := make([]xdsclient.Resource, 0, len(c.types[dt.typeURL].resources))
		for _, r := range c.types[dt.typeURL].resources {
			res = append(res, r)
		}
		slices.SortFunc(res, func(a, b xdsclient.Resource) int { return strings.Compare(a.Name, b.Name) })
		out = append(out, typeDump{dumpType: dt, resources: res})
	}
	return out
}

// readConfigDump subscribes to every resource of cfg.types and returns them
// once each type's first response is complete. It fails at once when the
// control plane refuses the certificate, and after cfg.timeout when a type
// got no response. A type that keeps changing past the timeout is taken
// as it is then: its first response's parts came long before.
func readConfigDump(ctx context.Context, cfg configDumpConfig) ([]typeDump, error) {
	conn, err := grpc.NewClient(cfg.address, grpc.WithTransportCredentials(cfg.creds))
	if err != nil {
		return nil, fmt.Errorf("--xds-address: %w", err)
	}
	defer conn.Close()
	client, err := xdsclient.New(conn, xdsclient.Options{
		Node:    xdsclient.Node{ID: cfg.nodeID, UserAgent: "kgate-config-dump"},
		Backoff: dumpBackoff,
	})
	if err != nil {
		return nil, err
	}
	col := newDumpCollector(cfg.types, time.Now)
	for _, t := range cfg.types {
		client.Watch(t.typeURL, col.handle, xdsclient.Wildcard)
	}

	ctx, cancel := context.WithCancel(ctx)
	ran := make(chan struct{})
	started := time.Now()
	go func() {
		defer close(ran)
		_ = client.Run(ctx) // fails only when called twice
	}()
	defer func() {
		cancel()
		<-ran
	}()

	deadline := started.Add(cfg.timeout)
	tick := time.NewTicker(dumpPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case now := <-tick.C:
			if err := dumpRefusal(client.Err(), cfg); err != nil {
				return nil, err
			}
			missing, complete := col.state(now, started)
			if complete {
				return col.snapshot(cfg.types), nil
			}
			if now.Before(deadline) {
				continue
			}
			if len(missing) > 0 {
				return nil, dumpNoResponse(missing, cfg, client.Err())
			}
			return col.snapshot(cfg.types), nil
		}
	}
}

// dumpRefusal turns the client's state into an error when the control plane
// refused the stream for good: waiting longer would not help. Other
// failures (the control plane unreachable, restarting) are waited out
// until the timeout.
func dumpRefusal(err error, cfg configDumpConfig) error {
	st, ok := dumpStatus(err)
	if !ok {
		return nil
	}
	switch st.Code() {
	case codes.PermissionDenied, codes.Unauthenticated:
		who := "the certificate"
		may := ""
		if cfg.identity != nil {
			who = fmt.Sprintf("the certificate in %s (%s)", cfg.tlsDir, cfg.identity)
			may = dumpMayRead(*cfg.identity)
		}
		return fmt.Errorf("the control plane at %s refused %s: %s%s; %s", cfg.address, who, dumpNameTypes(st.Message()), may, dumpObserverHint)
	case codes.ResourceExhausted:
		// The server's limits, or this client's on a message's size: the
		// client's error says which.
		cause := errors.Unwrap(err)
		if cause == nil {
			cause = err
		}
		return fmt.Errorf("reading from the control plane at %s: %v", cfg.address, cause)
	}
	return nil
}

// dumpMayRead names the types a certificate's role may read, for --type.
func dumpMayRead(id pki.Identity) string {
	var may []string
	for _, t := range dumpTypes {
		if (auth.Peer{Identity: id}).MayReceive(t.typeURL) {
			may = append(may, t.short)
		}
	}
	if len(may) == 0 {
		return "; role " + string(id.Role) + " may read none of the config"
	}
	return "; role " + string(id.Role) + " may read " + strings.Join(may, ", ") + " (--type " + strings.Join(may, ",") + ")"
}

// dumpNameTypes adds the short name after each type URL in a server message.
func dumpNameTypes(msg string) string {
	for _, t := range dumpTypes {
		msg = strings.ReplaceAll(msg, t.typeURL, t.typeURL+" ("+t.short+")")
	}
	return msg
}

// dumpNoResponse says which types got no response within the timeout, and why
// the stream failed if it did.
func dumpNoResponse(missing []dumpType, cfg configDumpConfig, clientErr error) error {
	names := make([]string, len(missing))
	for i, t := range missing {
		names[i] = t.short + " (" + t.typeURL + ")"
	}
	msg := fmt.Sprintf("no response of %s from the control plane at %s within --timeout %s", strings.Join(names, ", "), cfg.address, cfg.timeout)
	if cause := errors.Unwrap(clientErr); cause != nil {
		msg += ": " + cause.Error()
	}
	return errors.New(msg)
}

// dumpStatus finds the gRPC status an error wraps: the server's code and
// its own message, without what the client added around it.
func dumpStatus(err error) (*status.Status, bool) {
	var se interface{ GRPCStatus() *status.Status }
	if err == nil || !errors.As(err, &se) {
		return nil, false
	}
	return se.GRPCStatus(), true
}

// dumpedResource is one resource as -o json and -o yaml show it.
type dumpedResource struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Resource is the resource as protojson, with its type as "@type" and
	// field names as in Envoy's docs and config dumps.
	Resource json.RawMessage `json:"resource"`
}

// configDumpJSON renders the resources by type URL. encoding/json
// re-indents protojson's output, whose spacing protojson deliberately
// varies between builds: the same config always prints the same bytes.
func configDumpJSON(dump []typeDump) ([]byte, error) {
	opts := protojson.MarshalOptions{Multiline: true, Indent: "  ", UseProtoNames: true}
	doc := map[string][]dumpedResource{}
	for _, t := range dump {
		list := make([]dumpedResource, 0, len(t.resources))
		for _, r := range t.resources {
			a, err := anypb.New(r.Message)
			if err != nil {
				return nil, fmt.Errorf("%s %q: %w", t.short, r.Name, err)
			}
			js, err := opts.Marshal(a)
			if err != nil {
				return nil, fmt.Errorf("%s %q: %w", t.short, r.Name, err)
			}
			list = append(list, dumpedResource{Name: r.Name, Version: r.Version, Resource: js})
		}
		doc[t.typeURL] = list
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func printConfigDump(w io.Writer, output string, dump []typeDump) error {
	if output == "summary" {
		return printDumpSummary(w, dump)
	}
	b, err := configDumpJSON(dump)
	if err != nil {
		return err
	}
	if output == "yaml" {
		if b, err = yaml.JSONToYAML(b); err != nil {
			return fmt.Errorf("converting to YAML: %w", err)
		}
	}
	_, err = w.Write(b)
	return err
}

// printDumpSummary prints a row per resource and a line of counts per
// type, a type without resources included.
func printDumpSummary(w io.Writer, dump []typeDump) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "TYPE\tNAME\tVERSION")
	counts := make([]string, 0, len(dump))
	for _, t := range dump {
		for _, r := range t.resources {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", strings.ToUpper(t.short), r.Name, r.Version)
		}
		counts = append(counts, fmt.Sprintf("%s %d", strings.ToUpper(t.short), len(t.resources)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n%s\n", strings.Join(counts, ", "))
	return err
}

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/api/serving/v1beta1"
	"github.com/kgate/kgate/watcher/knative"
)

// resourceNames maps what users type to the admin API's resource names,
// with kubectl's and kn's short names.
var resourceNames = map[string]string{
	"ksvc": "services", "kservice": "services", "service": "services", "services": "services",
	"configuration": "configurations", "configurations": "configurations", "config": "configurations", "cfg": "configurations",
	"revision": "revisions", "revisions": "revisions", "rev": "revisions",
	"route": "routes", "routes": "routes", "rt": "routes",
	"domainmapping": "domainmappings", "domainmappings": "domainmappings", "dm": "domainmappings",
}

func newGetCommand() *cobra.Command {
	var (
		namespace, output, admin string
		all, watch               bool
		interval                 time.Duration
	)
	cmd := &cobra.Command{
		Use:   "get ksvc|configurations|revisions|routes|domainmappings [NAME]",
		Short: "Show the Knative objects of a running kgate (kgate local)",
		Long: `Lists the objects a running kgate serves, with their status, as kubectl and kn
show them. Revisions also show their ACTUAL and DESIRED replicas and their routing
MODE: Proxy (through the activator) or Serve (straight to the pods).

With -w (--watch) it keeps going, as kubectl get -w does: after the list, a new
row each time an object's row changes (a revision scaling, a Service becoming
Ready), until interrupted.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			resource, ok := resourceNames[strings.ToLower(args[0])]
			if !ok {
				return fmt.Errorf("unknown resource %q: use ksvc, configurations, revisions, routes or domainmappings", args[0])
			}
			if output != "table" && output != "json" && output != "yaml" {
				return fmt.Errorf("--output %q: must be table, json or yaml", output)
			}
			path := adminPrefix + "namespaces/" + namespace + "/" + resource
			switch {
			case len(args) == 2:
				path += "/" + args[1]
			case all:
				path = adminPrefix + resource
			}
			if watch {
				if interval <= 0 {
					return fmt.Errorf("--watch-interval %s: must be positive", interval)
				}
				return watchObjects(cmd, admin, path, resource, output, len(args) == 2, interval)
			}
			body, err := adminGet(cmd, admin, path)
			if err != nil {
				return err
			}
			return printObjects(cmd.OutOrStdout(), resource, output, body, len(args) == 2, time.Now())
		},
	}
	f := cmd.Flags()
	f.StringVarP(&namespace, "namespace", "n", "default", "the namespace")
	f.BoolVarP(&all, "all-namespaces", "A", false, "every namespace")
	f.StringVarP(&output, "output", "o", "table", "output format: table, json or yaml")
	f.StringVar(&admin, "admin-address", defaultAdminAddress, "host:port of the running kgate's admin API")
	f.BoolVarP(&watch, "watch", "w", false, "after listing, print a new row whenever an object changes, until interrupted")
	f.DurationVar(&interval, "watch-interval", 500*time.Millisecond, "how often --watch asks the running kgate")
	return cmd
}

// adminGet fetches a path of the admin API; an error answer becomes an
// error carrying its message.
func adminGet(cmd *cobra.Command, admin, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(cmd.Context(), http.MethodGet, "http://"+admin+path, nil)
	if err != nil {
		return nil, fmt.Errorf("--admin-address %q: %w", admin, err)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("no kgate answers at %s (is `kgate local` running?): %w", admin, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading the answer of %s: %w", admin, err)
	}
	if resp.StatusCode != http.StatusOK {
		var st struct{ Message string }
		if json.Unmarshal(body, &st) == nil && st.Message != "" {
			return nil, errors.New(st.Message)
		}
		return nil, fmt.Errorf("%s answered %s", admin, resp.Status)
	}
	return body, nil
}

// printObjects renders the admin API's answer: one object or a List.
func printObjects(w io.Writer, resource, output string, body []byte, single bool, now time.Time) error {
	switch output {
	case "json":
		_, err := w.Write(body)
		return err
	case "yaml":
		y, err := yaml.JSONToYAML(body)
		if err != nil {
			return fmt.Errorf("converting to YAML: %w", err)
		}
		_, err = w.Write(y)
		return err
	}
	items, err := itemsOf(body, single)
	if err != nil {
		return err
	}
	if len(items) == 0 {
		_, err := fmt.Fprintf(w, "No %s found.\n", resource)
		return err
	}
	header, rows, _, err := tableOf(resource, items, now)
	if err != nil {
		return err
	}
	return writeRows(w, header, rows)
}

// itemsOf splits the admin API's answer into its objects.
func itemsOf(body []byte, single bool) ([]json.RawMessage, error) {
	if single {
		return []json.RawMessage{body}, nil
	}
	var l struct{ Items []json.RawMessage }
	if err := json.Unmarshal(body, &l); err != nil {
		return nil, fmt.Errorf("decoding the list: %w", err)
	}
	return l.Items, nil
}

// writeRows writes aligned columns, the header first when there is one.
func writeRows(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	if header != nil {
		fmt.Fprintln(tw, strings.Join(header, "\t"))
	}
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// tableOf is the table of a resource: its header, a row per object, and
// each row's object ("namespace/name"). ageColumn is the index of a column
// that changes with time alone (-1 for none), which a watch ignores.
func tableOf(resource string, items []json.RawMessage, now time.Time) (header []string, rows [][]string, keys []string, err error) {
	add := func(meta *metav1.ObjectMeta, row []string) {
		rows = append(rows, row)
		keys = append(keys, meta.Namespace+"/"+meta.Name)
	}
	switch resource {
	case "services":
		header = []string{"NAME", "URL", "LATESTCREATED", "LATESTREADY", "READY", "REASON"}
		err = eachItem(items, func(s *servingv1.Service) {
			add(&s.ObjectMeta, append([]string{s.Name, urlOf(s.Status.URL), s.Status.LatestCreatedRevisionName, s.Status.LatestReadyRevisionName}, ready(s.Status.Conditions)...))
		})
	case "configurations":
		header = []string{"NAME", "LATESTCREATED", "LATESTREADY", "READY", "REASON"}
		err = eachItem(items, func(c *servingv1.Configuration) {
			add(&c.ObjectMeta, append([]string{c.Name, c.Status.LatestCreatedRevisionName, c.Status.LatestReadyRevisionName}, ready(c.Status.Conditions)...))
		})
	case "routes":
		header = []string{"NAME", "URL", "READY", "REASON"}
		err = eachItem(items, func(r *servingv1.Route) {
			add(&r.ObjectMeta, append([]string{r.Name, urlOf(r.Status.URL)}, ready(r.Status.Conditions)...))
		})
	case "domainmappings":
		header = []string{"NAME", "URL", "READY", "REASON"}
		err = eachItem(items, func(d *v1beta1.DomainMapping) {
			add(&d.ObjectMeta, append([]string{d.Name, urlOf(d.Status.URL)}, ready(d.Status.Conditions)...))
		})
	case "revisions":
		header = []string{"NAME", "CONFIG NAME", "GENERATION", "AGE", "READY", "REASON", "ACTUAL", "DESIRED", "MODE"}
		err = eachItem(items, func(r *servingv1.Revision) {
			row := []string{r.Name, r.Labels["serving.knative.dev/configuration"], r.Labels["serving.knative.dev/configurationGeneration"], age(now, r.CreationTimestamp.Time)}
			row = append(row, ready(r.Status.Conditions)...)
			add(&r.ObjectMeta, append(row, replicas(r.Status.ActualReplicas), replicas(r.Status.DesiredReplicas), r.Status.Annotations[knative.AnnotationRoutingMode]))
		})
	}
	return header, rows, keys, err
}

// ageColumn is the revisions table's AGE column, which changes with time
// alone: a watch does not print a row for it.
const ageColumn = 3

// eachItem decodes every item as T.
func eachItem[T any](items []json.RawMessage, f func(*T)) error {
	for _, raw := range items {
		var x T
		if err := json.Unmarshal(raw, &x); err != nil {
			return fmt.Errorf("decoding an object: %w", err)
		}
		f(&x)
	}
	return nil
}

func urlOf(u *servingv1.URL) string {
	if u == nil {
		return ""
	}
	return u.String()
}

// ready is the READY and REASON columns: the Ready condition's status and
// reason, as kubectl prints them.
func ready(conds []servingv1.Condition) []string {
	for _, c := range conds {
		if c.Type == servingv1.ConditionReady {
			return []string{string(c.Status), c.Reason}
		}
	}
	return []string{string(corev1.ConditionUnknown), ""}
}

func replicas(n *int32) string {
	if n == nil {
		return ""
	}
	return strconv.Itoa(int(*n))
}

// age renders a duration as kubectl does: 42s, 5m, 3h, 2d.
func age(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

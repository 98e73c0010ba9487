package dashboard

import (
	"bytes"
	"cmp"
	"context"
	"embed"
	"encoding/json"
	"html/template"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	servingv1 "github.com/kgate/kgate/api/serving/v1"
	"github.com/kgate/kgate/watcher/knative"
)

//go:embed assets
var assets embed.FS

var pageTemplate = template.Must(template.ParseFS(assets, "assets/page.html"))

// Objects are what the page shows: the objects as the admin API serves
// them, revisions with their replicas and routing mode in status.
type Objects struct {
	Services  []*servingv1.Service
	Revisions []*servingv1.Revision
}

// Options configure a Page.
type Options struct {
	// Objects returns the objects now; required.
	Objects func() Objects
	// Requests returns the requests per revision since its previous call
	// (Requests.Take); nil: no request rates.
	Requests func() map[string]float64
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// Interval is the time between samples; 0: one second.
	Interval time.Duration
	// Length is the number of points kept per revision; 0: five minutes'
	// worth.
	Length int
	// MaxRevisions and MaxServices bound what is sampled and shown (the
	// first by namespace and name); 0: 50 and 100.
	MaxRevisions, MaxServices int
}

// Page is the live page and its sampler.
type Page struct {
	opts    Options
	sampler *Sampler
}

// New returns a Page; Run samples.
func New(opts Options) *Page {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.Length <= 0 {
		opts.Length = int(5 * time.Minute / opts.Interval)
	}
	if opts.MaxRevisions <= 0 {
		opts.MaxRevisions = 50
	}
	if opts.MaxServices <= 0 {
		opts.MaxServices = 100
	}
	return &Page{opts: opts, sampler: NewSampler(opts.Length, opts.MaxRevisions)}
}

// Run samples every Interval until ctx ends.
func (p *Page) Run(ctx context.Context) error {
	t := time.NewTicker(p.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			p.Sample()
		}
	}
}

// Sample records one point of every revision, at Now.
func (p *Page) Sample() {
	objs := p.opts.Objects()
	obs := make([]Observation, 0, len(objs.Revisions))
	for _, r := range objs.Revisions {
		obs = append(obs, Observation{Key: r.Namespace + "/" + r.Name, Actual: deref(r.Status.ActualReplicas, 0), Desired: deref(r.Status.DesiredReplicas, -1)})
	}
	var reqs map[string]float64
	if p.opts.Requests != nil {
		reqs = p.opts.Requests()
	}
	p.sampler.Record(p.opts.Now(), obs, reqs, p.opts.Interval)
}

func deref(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}

// View is the page's data, as /ui/data serves it.
type View struct {
	Now string `json:"now"`
	// WindowSeconds is the time the charts span.
	WindowSeconds int            `json:"windowSeconds"`
	Services      []ServiceView  `json:"services"`
	Revisions     []RevisionView `json:"revisions"`
	Hidden        HiddenCounts   `json:"hidden"`
	// Empty and EmptyService fill the rows the script clones.
	Empty        RevisionView `json:"-"`
	EmptyService ServiceView  `json:"-"`
}

// HiddenCounts are the objects beyond the page's bounds.
type HiddenCounts struct {
	Services  int `json:"services"`
	Revisions int `json:"revisions"`
}

// ServiceView is one Service's row.
type ServiceView struct {
	Key         string `json:"key"`
	Namespace   string `json:"namespace"`
	Name        string `json:"name"`
	URL         string `json:"url"`
	Ready       string `json:"ready"`
	Reason      string `json:"reason"`
	LatestReady string `json:"latestReady"`
}

// RevisionView is one revision's row.
type RevisionView struct {
	Key       string `json:"key"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Service   string `json:"service"`
	Ready     string `json:"ready"`
	Mode      string `json:"mode"`
	Actual    string `json:"actual"`
	Desired   string `json:"desired"`
	// Pods charts actual (first line) and desired pods; Rate the requests
	// per second.
	Pods Chart `json:"pods"`
	Rate Chart `json:"rate"`
}

// Chart is a small line chart: SVG polyline points in a ChartWidth by
// ChartHeight box, newest at the right.
type Chart struct {
	// Max is the value at the top of the box, Last the first line's latest
	// value.
	Max   float64  `json:"max"`
	Last  float64  `json:"last"`
	Lines []string `json:"lines"`
	// Label says Last and Max for people.
	Label string `json:"label"`
}

// The charts' box.
const (
	ChartWidth  = 240
	ChartHeight = 48
)

// View returns the page's data now.
func (p *Page) View() View {
	now := p.opts.Now()
	objs := p.opts.Objects()
	v := View{
		Now:           now.UTC().Format(time.RFC3339),
		WindowSeconds: int((time.Duration(p.opts.Length) * p.opts.Interval).Seconds()),
		Services:      []ServiceView{},
		Revisions:     []RevisionView{},
		Empty:         RevisionView{Pods: Chart{Lines: []string{"", ""}}, Rate: Chart{Lines: []string{""}}},
	}
	svcs := slices.SortedFunc(slices.Values(objs.Services), byKey[*servingv1.Service])
	if n := len(svcs) - p.opts.MaxServices; n > 0 {
		v.Hidden.Services, svcs = n, svcs[:p.opts.MaxServices]
	}
	for _, s := range svcs {
		ready, reason := condition(s.Status.Conditions)
		v.Services = append(v.Services, ServiceView{
			Key: s.Namespace + "/" + s.Name, Namespace: s.Namespace, Name: s.Name, URL: s.Status.URL.String(),
			Ready: ready, Reason: reason, LatestReady: s.Status.LatestReadyRevisionName,
		})
	}
	revs := slices.SortedFunc(slices.Values(objs.Revisions), byKey[*servingv1.Revision])
	if n := len(revs) - p.opts.MaxRevisions; n > 0 {
		v.Hidden.Revisions, revs = n, revs[:p.opts.MaxRevisions]
	}
	window := time.Duration(p.opts.Length) * p.opts.Interval
	for _, r := range revs {
		key := r.Namespace + "/" + r.Name
		ready, _ := condition(r.Status.Conditions)
		rv := RevisionView{
			Key: key, Namespace: r.Namespace, Name: r.Name, Service: r.Labels[knative.LabelService], Ready: ready,
			Mode: r.Status.Annotations[knative.AnnotationRoutingMode], Actual: "-", Desired: "-",
		}
		if r.Status.ActualReplicas != nil {
			rv.Actual = strconv.Itoa(int(*r.Status.ActualReplicas))
		}
		if r.Status.DesiredReplicas != nil {
			rv.Desired = strconv.Itoa(int(*r.Status.DesiredReplicas))
		}
		pts := p.sampler.Series(key)
		rv.Pods = chart(now, window, pts, "pods", func(p Point) float64 { return p.Actual }, func(p Point) float64 { return p.Desired })
		rv.Rate = chart(now, window, pts, "rps", func(p Point) float64 { return p.RPS })
		v.Revisions = append(v.Revisions, rv)
	}
	return v
}

type keyed interface {
	GetNamespace() string
	GetName() string
}

func byKey[T keyed](a, b T) int {
	return cmp.Or(cmp.Compare(a.GetNamespace(), b.GetNamespace()), cmp.Compare(a.GetName(), b.GetName()))
}

// condition returns the Ready condition's status and reason; Unknown
// when there is none.
func condition(conds []servingv1.Condition) (string, string) {
	for _, c := range conds {
		if c.Type == servingv1.ConditionReady {
			return string(c.Status), c.Reason
		}
	}
	return string(corev1.ConditionUnknown), ""
}

// chart draws one polyline per value function over the points of the last
// window before now; a negative value (no decision yet) is left out.
func chart(now time.Time, window time.Duration, pts []Point, unit string, lines ...func(Point) float64) Chart {
	c := Chart{Lines: make([]string, len(lines))}
	for _, p := range pts {
		for _, f := range lines {
			c.Max = max(c.Max, f(p))
		}
	}
	c.Max = niceCeil(1.2 * c.Max) // room above the highest point
	if len(pts) > 0 {
		c.Last = max(lines[0](pts[len(pts)-1]), 0)
	}
	for i, f := range lines {
		var b strings.Builder
		for _, p := range pts {
			v := f(p)
			age := now.Sub(p.At)
			if v < 0 || age > window {
				continue
			}
			x := ChartWidth * (1 - max(age, 0).Seconds()/window.Seconds())
			y := ChartHeight - 1 - v/c.Max*(ChartHeight-2)
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(strconv.FormatFloat(x, 'f', 1, 64))
			b.WriteByte(',')
			b.WriteString(strconv.FormatFloat(y, 'f', 1, 64))
		}
		c.Lines[i] = b.String()
	}
	c.Label = strconv.FormatFloat(math.Round(c.Last*10)/10, 'f', -1, 64) + " " + unit + " (max " + strconv.FormatFloat(c.Max, 'f', -1, 64) + ")"
	return c
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// ServeHTTP serves the page at / (and /ui), its data at /ui/data and its
// script and style under /ui/.
func (p *Page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "only GET is served", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	switch r.URL.Path {
	case "/", "/ui", "/ui/":
		var buf bytes.Buffer
		if err := pageTemplate.Execute(&buf, p.View()); err != nil {
			http.Error(w, "rendering the page: "+err.Error(), http.StatusInternalServerError)
			return
		}
		// Everything comes from here: no inline script, nothing from
		// elsewhere.
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
		h.Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(buf.Bytes())
	case "/ui/data":
		b, err := json.Marshal(p.View())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		h.Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	case "/ui/app.js":
		p.asset(w, "assets/app.js", "text/javascript; charset=utf-8")
	case "/ui/style.css":
		p.asset(w, "assets/style.css", "text/css; charset=utf-8")
	default:
		http.NotFound(w, r)
	}
}

func (p *Page) asset(w http.ResponseWriter, name, contentType string) {
	b, err := assets.ReadFile(name)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	_, _ = w.Write(b)
}

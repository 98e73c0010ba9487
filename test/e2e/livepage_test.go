package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// revisionRow is what the live page shows of a revision, read from the
// browser's DOM.
type revisionRow struct {
	Found      bool    `json:"found"`
	Mode       string  `json:"mode"`
	Actual     string  `json:"actual"`
	Desired    string  `json:"desired"`
	RPS        float64 `json:"rps"`
	RPSPoints  string  `json:"rpsPoints"`
	PodsPoints string  `json:"podsPoints"`
	Updates    int     `json:"updates"`
	State      string  `json:"state"`
	SvcURL     string  `json:"svcURL"`
	SvcReady   string  `json:"svcReady"`
}

const readRows = `(function () {
  const rev = document.querySelector('tr.rev[data-key="default/hello-00001"]');
  const svc = document.querySelector('tr.svc[data-key="default/hello"]');
  const st = document.getElementById("status");
  const out = {found: !!rev && !!svc, updates: Number(st.dataset.updates || 0), state: st.dataset.state};
  if (!out.found) return out;
  const rps = rev.querySelector("svg.rps");
  out.mode = rev.querySelector(".mode").textContent;
  out.actual = rev.querySelector(".actual").textContent;
  out.desired = rev.querySelector(".desired").textContent;
  out.rps = Number(rps.dataset.last);
  out.rpsPoints = rps.querySelector("polyline").getAttribute("points");
  out.podsPoints = rev.querySelector("svg.pods polyline").getAttribute("points");
  out.svcURL = svc.querySelector(".url").textContent;
  out.svcReady = svc.querySelector(".ready").textContent;
  return out;
})()`

// The live page in a real headless Chromium: the Service and its revision
// appear, the page updates itself, and under load the request-rate chart
// moves. The screenshot is saved in the test's temp folder, or at
// $KGATE_LIVEPAGE_SCREENSHOT to keep it.
func TestLivePageInBrowser(t *testing.T) {
	bin := chromium(t)
	start := time.Now()
	k := startKgate(t, map[string]string{"hello.yaml": example(t, "examples/hello.yaml")})
	k.ready("hello", host("hello"), "Hello World!", 60*time.Second)
	t.Logf("kgate local serving hello after %v", time.Since(start).Round(time.Millisecond))

	b := startBrowser(t, bin, "http://"+k.admin+"/")
	page := b.page("http://" + k.admin + "/")
	var row revisionRow
	k.eventually("the page shows hello and its revision and updates itself", 20*time.Second, func() error {
		row = revisionRow{}
		if err := page.eval(readRows, &row); err != nil {
			return err
		}
		if !row.Found || row.Updates < 2 || row.State != "live" {
			return fmt.Errorf("%+v", row)
		}
		if row.SvcURL != "http://hello.default.127.0.0.1.nip.io" || row.SvcReady != "True" {
			return fmt.Errorf("the Service's row: %+v", row)
		}
		if row.Mode != "Proxy" && row.Mode != "Serve" {
			return fmt.Errorf("the revision's mode: %+v", row)
		}
		return nil
	})
	t.Logf("page live after %v: %+v", time.Since(start).Round(time.Millisecond), row)
	before := row

	// Load through the gateway until the page's request-rate chart says so.
	ctx, stopLoad := context.WithCancel(context.Background())
	l := runLoad(ctx, k, 4, host("hello"), "/")
	defer func() { stopLoad(); l.wait() }()
	k.eventually("the request-rate chart moves under load", 30*time.Second, func() error {
		row = revisionRow{}
		if err := page.eval(readRows, &row); err != nil {
			return err
		}
		// Idle, the page shows at most the odd probe: 4 clients send hundreds
		// a second.
		if row.RPS < 5 || row.RPSPoints == before.RPSPoints {
			return fmt.Errorf("rps %v, points %q (before: %q)", row.RPS, row.RPSPoints, before.RPSPoints)
		}
		if !hasPointAbove(row.RPSPoints, 47) {
			return fmt.Errorf("no point of the rate above the baseline: %q", row.RPSPoints)
		}
		return nil
	})
	t.Logf("chart moved after %v, %d requests sent: %v rps, actual/desired %s/%s", time.Since(start).Round(time.Millisecond), l.total.Load(), row.RPS, row.Actual, row.Desired)
	if row.Actual == "0" || row.PodsPoints == "" {
		t.Errorf("under load the pods chart shows no pod: %+v", row)
	}

	path := os.Getenv("KGATE_LIVEPAGE_SCREENSHOT")
	if path == "" {
		path = filepath.Join(t.TempDir(), "livepage.png")
	}
	if err := page.screenshot(path); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() < 1000 {
		t.Fatalf("screenshot %s: %v", path, err)
	}
	t.Logf("screenshot: %s", path)
	stopLoad()
	l.wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) > 0 {
		t.Errorf("%d of %d requests failed, first: %s", len(l.failures), l.total.Load(), l.failures[0])
	}
}

// hasPointAbove says whether an SVG polyline has a point with y under
// baseline (SVG's y grows downwards).
func hasPointAbove(points string, baseline float64) bool {
	for _, p := range strings.Fields(points) {
		var x, y float64
		if _, err := fmt.Sscanf(p, "%f,%f", &x, &y); err == nil && y < baseline {
			return true
		}
	}
	return false
}

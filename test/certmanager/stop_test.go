package certmanager_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	apiutil "github.com/cert-manager/cert-manager/pkg/api/util"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"

	"github.com/kgate/kgate/test/certmanager"
	"github.com/kgate/kgate/test/kube"
)

// TestControllersStop: once the test that started them ends, the
// controllers, their workers and informers are gone. What stays, counted and
// logged but not failed, the harness cannot reach: two idle goroutines per
// controller.ContextFactory.Build (an event broadcaster it starts and never
// shuts down), and the trigger controller's renewal timer per Certificate
// (pkg/scheduler, never cancelled on shutdown; it fires at renewal time into
// a shut-down queue).
func TestControllersStop(t *testing.T) {
	kube.Require(t)
	t.Run("run", func(t *testing.T) {
		m := certmanager.Start(t, kube.Start(t))
		_, err := m.CM.CertmanagerV1().Issuers(ns).Create(context.Background(), &cmapi.Issuer{
			ObjectMeta: metav1.ObjectMeta{Name: "selfsigned"},
			Spec:       cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{SelfSigned: &cmapi.SelfSignedIssuer{}}},
		}, metav1.CreateOptions{})
		noErr(t, err)
		poll(t, 30*time.Second, "the Issuer Ready", func() error {
			iss, err := m.CM.CertmanagerV1().Issuers(ns).Get(context.Background(), "selfsigned", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if !apiutil.IssuerHasCondition(iss, cmapi.IssuerCondition{Type: cmapi.IssuerConditionReady, Status: cmmeta.ConditionTrue}) {
				return fmt.Errorf("conditions %+v", iss.Status.Conditions)
			}
			return nil
		})
	})
	var left []string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var broadcasters, timers int
		if left, broadcasters, timers = certManagerGoroutines(); len(left) == 0 {
			t.Logf("left: %d idle event-broadcaster goroutines (ContextFactory.Build never shuts its broadcaster down), %d renewal timers (pkg/scheduler)", broadcasters, timers)
			return
		}
	}
	for _, g := range left {
		t.Log(g)
	}
	t.Errorf("%d goroutines of cert-manager or client-go left", len(left))
}

// certManagerGoroutines returns the stacks of goroutines running
// cert-manager's or client-go's code, except event broadcasters' and
// renewal timers', which it counts.
func certManagerGoroutines() (left []string, broadcasters, timers int) {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		switch {
		case strings.Contains(g, "tools/record.(*eventBroadcasterImpl).StartEventWatcher"):
			broadcasters++
		case strings.Contains(g, "cert-manager/pkg/scheduler.afterFunc"):
			timers++
		case strings.Contains(g, "cert-manager/cert-manager") || strings.Contains(g, "k8s.io/client-go"):
			left = append(left, g)
		}
	}
	return left, broadcasters, timers
}

package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kgate/kgate/internal/testrun"
)

// freePort returns a loopback port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	return lis.Addr().(*net.TCPAddr).Port
}

// TestSampleHelloworld serves `kgate sample helloworld` on $PORT with
// TARGET set, asks it once, and stops it as a signal would.
func TestSampleHelloworld(t *testing.T) {
	port := strconv.Itoa(freePort(t))
	t.Setenv("PORT", port)
	t.Setenv("TARGET", "Knative")

	ctx, cancel := context.WithCancel(t.Context())
	cmd := newRootCommand()
	var logs bytes.Buffer
	cmd.SetOut(&logs)
	cmd.SetErr(&logs)
	cmd.SetArgs([]string{"sample", "helloworld"})
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()

	body := getWhenUp(t, "http://127.0.0.1:"+port+"/")
	if body != "Hello Knative!\n" {
		t.Errorf("got %q, want %q", body, "Hello Knative!\n")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("kgate sample: %v\n%s", err, logs.String())
	}
	if !strings.Contains(logs.String(), "sample drained") {
		t.Errorf("logs do not say the sample drained:\n%s", logs.String())
	}
}

// getWhenUp GETs url, retrying while the server is not listening yet.
func getWhenUp(t *testing.T, url string) string {
	t.Helper()
	var body string
	testrun.Poll{Within: 10 * time.Second, Every: 10 * time.Millisecond}.Eventually(t, "GET "+url, func() error {
		resp, err := http.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		body = string(b)
		return nil
	})
	return body
}

func TestSampleErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"sample", "nope"}, `no sample "nope": the samples are autoscale, helloworld`},
		{[]string{"sample"}, "accepts 1 arg(s), received 0"},
	} {
		_, err := run(t, tc.args...)
		if err == nil || err.Error() != tc.want {
			t.Errorf("kgate %s: got error %v, want %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}

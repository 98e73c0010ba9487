//go:build unix

package local

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kgate/kgate/deploy/samples"
)

// TestMain lets the test binary be the processes the tests deploy: run as
// "sample NAME" it is `kgate sample NAME` (so the default image map, which
// names this binary, works unchanged), and as "testapp MODE" one of the
// apps below. No build step, and nothing else in the module has to compile.
func TestMain(m *testing.M) {
	if len(os.Args) > 2 {
		switch os.Args[1] {
		case "sample":
			os.Exit(runSample(os.Args[2]))
		case "testapp":
			os.Exit(runTestApp(os.Args[2]))
		}
	}
	// A race-enabled binary sleeps a second before it exits, to let
	// reports be written; the processes under test need not.
	os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	os.Exit(m.Run())
}

// runSample does what `kgate sample NAME` does.
func runSample(name string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := samples.Run(ctx, slog.New(slog.NewTextHandler(os.Stderr, nil)), name, os.Getenv, samples.DrainTimeout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// runTestApp runs an app with the misbehaviours the tests need:
//
//	exit    exits with code 3 at once
//	gated   serves on $PORT: / greets $TARGET, /ready is 200 only once the
//	        file $READY_FILE exists (and prints "probed" each time), /env?name=X
//	        answers $X, /args the arguments, /crash exits with code 4;
//	        with SPAWN=1 it starts an orphan child first and prints
//	        "child pid N"; with IGNORE_TERM=1 it ignores SIGTERM
//	orphan  ignores SIGTERM and sleeps
//	term    listens on $PORT, and prints "SIGTERM" when it gets it, then
//	        exits 0, or with IGNORE_TERM=1 goes on
//	forker  starts an orphan (in its process group), prints "child pid
//	        N" and exits
//	kgate   is a kgate: it runs a Deployer with a replica that is an
//	        orphan, prints "replica RECORD" (its Record in JSON) and sleeps
func runTestApp(mode string) int {
	switch mode {
	case "exit":
		fmt.Fprintln(os.Stderr, "exiting at once")
		return 3
	case "orphan":
		signal.Ignore(syscall.SIGTERM)
		time.Sleep(time.Hour)
		return 0
	case "gated":
		return runGated()
	case "term":
		return runTerm()
	case "forker":
		child := exec.Command(os.Args[0], "testapp", "orphan")
		if err := child.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Printf("child pid %d\n", child.Process.Pid)
		return 0
	case "kgate":
		return runKgate()
	}
	fmt.Fprintln(os.Stderr, "unknown testapp mode", mode)
	return 2
}

func runGated() int {
	if os.Getenv("SPAWN") == "1" {
		child := exec.Command(os.Args[0], "testapp", "orphan")
		if err := child.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Printf("child pid %d\n", child.Process.Pid)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if os.Getenv("IGNORE_TERM") == "1" {
		signal.Ignore(syscall.SIGTERM)
	}
	mux := http.NewServeMux()
	mux.Handle("/", samples.Helloworld(os.Getenv("TARGET")))
	mux.HandleFunc("/ready", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Println("probed")
		if _, err := os.Stat(os.Getenv("READY_FILE")); err != nil {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("/env", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, os.Getenv(r.URL.Query().Get("name")))
	})
	mux.HandleFunc("/args", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, strings.Join(os.Args[1:], " "))
	})
	mux.HandleFunc("/crash", func(http.ResponseWriter, *http.Request) { os.Exit(4) })
	lis, err := net.Listen("tcp", samples.Address(os.Getenv("PORT")))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := samples.Serve(ctx, lis, mux, time.Minute); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func runTerm() int {
	terms := make(chan os.Signal, 1)
	signal.Notify(terms, syscall.SIGTERM)
	lis, err := net.Listen("tcp", samples.Address(os.Getenv("PORT")))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	for range terms {
		fmt.Println("SIGTERM")
		if os.Getenv("IGNORE_TERM") != "1" {
			return 0
		}
	}
	return 0
}

// runKgate is a kgate running one replica, to be killed by the test.
func runKgate() int {
	listed := make(chan []Record, 1)
	d, err := New(Options{
		Resolve: noImages,
		OnReplicas: func(recs []Record) {
			select {
			case listed <- recs:
			default:
			}
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := d.SetRevision("default/orphan-00001", newRevision("orphan-00001", "orphan", testApp("orphan"))); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := d.Scale(context.Background(), "default/orphan-00001", 1); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	recs := <-listed
	if len(recs) != 1 {
		fmt.Fprintln(os.Stderr, "listed", recs)
		return 1
	}
	b, err := json.Marshal(recs[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("replica %s\n", b)
	time.Sleep(time.Hour)
	return 0
}

package local

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helper is a process the test started in a process group of its own,
// with a replica's mark in its environment, and its Record.
type helper struct {
	rec    Record
	child  int           // for "forker": the orphan it left in its group
	exited chan struct{} // closed once the test reaped it
}

// startHelper runs the test binary as testapp mode, as a replica runs:
// in a group of its own, marked. The group is reaped when the test ends,
// by Reap itself, which kills only what it is sure of.
func startHelper(t *testing.T, mode string) *helper {
	t.Helper()
	cmd := exec.Command(os.Args[0], "testapp", mode)
	mark := newMark()
	cmd.Env = append(os.Environ(), markVar+"="+mark)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started, err := processStart(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	h := &helper{
		rec:    Record{Revision: "default/helper", PID: cmd.Process.Pid, Started: started, Mark: mark},
		exited: make(chan struct{}),
	}
	t.Cleanup(func() {
		Reap(context.Background(), []Record{h.rec}, nil)
		<-h.exited
	})
	if mode == "forker" {
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if h.child, err = strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "child pid "))); err != nil {
			t.Fatalf("forker printed %q", line)
		}
	}
	go func() {
		_ = cmd.Wait()
		close(h.exited)
	}()
	if mode == "forker" {
		<-h.exited // the replica is gone, its child left in its group
	}
	return h
}

// TestReap kills the recorded processes that still run, and only those
// that are really the recorded ones.
func TestReap(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mode   string
		record func(Record) Record
		want   int // reaped
	}{
		{name: "the recorded replica", mode: "orphan", record: func(r Record) Record { return r }, want: 1},
		{name: "another process with its pid", mode: "orphan", record: func(r Record) Record {
			r.Started.Ticks--
			r.Mark = newMark()
			return r
		}},
		{name: "another process with its pid, no mark recorded", mode: "orphan", record: func(r Record) Record {
			r.Started.Ticks--
			r.Mark = ""
			return r
		}},
		{name: "another start, but the replica's mark", mode: "orphan", record: func(r Record) Record {
			r.Started.Ticks-- // as if misread: the mark is proof enough
			return r
		}, want: 1},
		{name: "before a reboot", mode: "orphan", record: func(r Record) Record {
			r.Started.BootID = "00000000-0000-0000-0000-000000000000"
			return r
		}},
		{name: "not recorded on Linux", mode: "orphan", record: func(r Record) Record {
			r.Started = ProcessStart{}
			return r
		}},
		{name: "what a dead replica left in its group", mode: "forker", record: func(r Record) Record { return r }, want: 1},
		{name: "another's group, with its pid", mode: "forker", record: func(r Record) Record {
			r.Mark = newMark()
			return r
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := startHelper(t, tc.mode)
			victim := h.rec.PID
			if tc.mode == "forker" {
				victim = h.child
			}
			if !alive(victim) {
				t.Fatalf("pid %d is not running before Reap", victim)
			}
			start := time.Now()
			if got := Reap(t.Context(), []Record{tc.record(h.rec)}, nil); got != tc.want {
				t.Errorf("Reap = %d, want %d", got, tc.want)
			}
			if tc.want == 0 {
				if !alive(victim) {
					t.Errorf("pid %d was killed", victim)
				}
				return
			}
			// Reap waits for the group to be gone: nothing is left to
			// poll for.
			if alive(victim) {
				t.Errorf("pid %d outlived Reap", victim)
			}
			if d := time.Since(start); d > reapWait+time.Second {
				t.Errorf("Reap took %s", d)
			}
		})
	}
}

// TestReapNothing reaps records of processes that are gone, and none.
func TestReapNothing(t *testing.T) {
	t.Parallel()
	start, err := processStart(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	recs := []Record{
		{Revision: "default/self", PID: os.Getpid(), Started: start}, // never kgate itself
		{Revision: "default/init", PID: 1, Started: start},
		{Revision: "default/none", PID: 0},
	}
	if got := Reap(t.Context(), recs, nil); got != 0 {
		t.Errorf("Reap = %d", got)
	}
	if got := Reap(t.Context(), nil, nil); got != 0 {
		t.Errorf("Reap(nil) = %d", got)
	}
}

func TestParseStat(t *testing.T) {
	// comm may hold spaces and parentheses.
	const line = "4242 (a b) (c)) S 1 4240 4240 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100 " +
		"18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n"
	got, err := parseStat(line)
	if want := (procStat{state: 'S', pgid: 4240, start: 987654}); err != nil || got != want {
		t.Errorf("parseStat = %+v, %v; want %+v", got, err, want)
	}
	for _, bad := range []string{"", "4242 (x", "4242 (x) S 1 2", "4242 (x) S 1 x 4240 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 9 1"} {
		if _, err := parseStat(bad); err == nil {
			t.Errorf("parseStat(%q) did not fail", bad)
		}
	}
}

// TestOnReplicas lists the live processes as they start and stop, each
// with what Reap needs to recognize it.
func TestOnReplicas(t *testing.T) {
	t.Parallel()
	lists := make(chan []Record, 100)
	f := newFixture(t, Options{OnReplicas: func(recs []Record) { lists <- recs }})
	rev := f.start(t, newRevision("listed-00001", "listed", testApp("term")), 2)
	f.ready(t, rev, 2)
	var recs []Record
	waitFor(t, "a list of 2 replicas", func() bool {
		for len(lists) > 0 {
			recs = <-lists
		}
		return len(recs) == 2
	})
	all, byReplica := f.pids(t)
	slices.Sort(all) // as the list is, by pid
	boot, err := bootID()
	if err != nil {
		t.Fatal(err)
	}
	for i, rec := range recs {
		if rec.Revision != rev || rec.PID != all[i] || rec.Started.BootID != boot || rec.Mark == "" {
			t.Errorf("record %d: %+v, want revision %s, pid %d, this boot and a mark", i, rec, rev, all[i])
		}
		if st, err := readStat(rec.PID); err != nil || st.start != rec.Started.Ticks || st.pgid != rec.PID {
			t.Errorf("record %d: start %d, but the process reads %+v, %v", i, rec.Started.Ticks, st, err)
		}
		if !hasMark(rec.PID, rec.Mark) {
			t.Errorf("record %d: the process does not carry its mark", i)
		}
	}
	if recs[0].Mark == recs[1].Mark {
		t.Error("two processes have the same mark")
	}
	b, err := json.Marshal(recs[0])
	if err != nil {
		t.Fatal(err)
	}
	var back Record
	if err := json.Unmarshal(b, &back); err != nil || back != recs[0] {
		t.Errorf("JSON round trip: %s gave %+v, %v", b, back, err)
	}

	if err := f.Scale(t.Context(), rev, 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a list of 1 replica", func() bool {
		for len(lists) > 0 {
			recs = <-lists
		}
		return len(recs) == 1
	})
	if recs[0].PID != byReplica["1"] {
		t.Errorf("after scaling to 1: %+v, want the first replica, pid %d", recs, byReplica["1"])
	}
}

// TestReplicaDiesWithKgate kills, with SIGKILL, a kgate running a replica
// that ignores SIGTERM: the replica dies with it.
func TestReplicaDiesWithKgate(t *testing.T) {
	t.Parallel()
	kgate := exec.Command(os.Args[0], "testapp", "kgate")
	out, err := kgate.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := kgate.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var rec Record
	t.Cleanup(func() {
		kgate.Process.Kill()
		<-exited
		Reap(context.Background(), []Record{rec}, nil) // should the test fail
	})
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		lines <- line
		_ = kgate.Wait()
		close(exited)
	}()
	var line string
	select {
	case line = <-lines:
	case <-time.After(15 * time.Second):
		t.Fatal("the kgate printed no replica within 15 s")
	}
	if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "replica ")), &rec); err != nil || rec.PID == 0 {
		t.Fatalf("the kgate printed %q: %v", line, err)
	}
	if !alive(rec.PID) {
		t.Fatalf("the replica, pid %d, is not running", rec.PID)
	}

	if err := kgate.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	killed := time.Now()
	for alive(rec.PID) {
		if time.Since(killed) > 5*time.Second {
			t.Fatalf("the replica, pid %d, outlived its kgate by 5 s", rec.PID)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

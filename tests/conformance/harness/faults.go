package harness

import (
	"errors"
	"net/http"
	"sort"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
)

// Fault delays or fails every call of one plugin API method made during a time window, as a
// server that is slow or failing would. Windows are on the wall clock (not SetClock's).
type Fault struct {
	From, Until time.Time
	// Each call in the window waits this long first.
	Delay time.Duration
	// Then it fails: an AppError or error where the method returns one, zero values elsewhere.
	Fail bool
}

// InjectFault adds a fault window for method (its Go name, e.g. "CreatePost"). Windows of one
// method may overlap: a call waits for the longest delay and fails if any window fails it.
func (f *FakeAPI) InjectFault(method string, fault Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults[method] = append(f.faults[method], fault)
}

// FailFor fails every call of methods from now for d; it returns when the window ends.
func (f *FakeAPI) FailFor(d time.Duration, methods ...string) time.Time {
	now := time.Now()
	for _, m := range methods {
		f.InjectFault(m, Fault{From: now, Until: now.Add(d), Fail: true})
	}
	return now.Add(d)
}

// ClearFaults removes every fault window.
func (f *FakeAPI) ClearFaults() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = map[string][]Fault{}
}

// FaultedCalls is how many calls of method a fault window failed.
func (f *FakeAPI) FaultedCalls(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.faulted[method]
}

// fault applies the windows of method open now: it waits their delay (without holding the
// fake's lock) and says whether the call fails. FaultyAPI calls it first in every method.
func (f *FakeAPI) fault(method string) bool {
	now := time.Now()
	f.mu.Lock()
	var delay time.Duration
	fail := false
	for _, w := range f.faults[method] {
		if !now.Before(w.From) && now.Before(w.Until) {
			delay = max(delay, w.Delay)
			fail = fail || w.Fail
		}
	}
	if fail {
		f.faulted[method]++
	}
	f.mu.Unlock()
	time.Sleep(delay)
	return fail
}

func faultAppError(method string) *model.AppError {
	return model.NewAppError(method, "fake_api.injected_fault", nil, "injected fault: "+method, http.StatusServiceUnavailable)
}

func faultError(method string) error {
	return errors.New("injected fault: " + method)
}

// GetPostsSince returns the channel's live posts created or updated at or after since
// (milliseconds), newest first, as the server's PostList.
func (f *FakeAPI) GetPostsSince(channelID string, since int64) (*model.PostList, *model.AppError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("GetPostsSince")
	var found []*model.Post
	for _, p := range f.posts {
		if p.ChannelId == channelID && p.DeleteAt == 0 && (p.CreateAt >= since || p.UpdateAt >= since) {
			found = append(found, p)
		}
	}
	sort.Slice(found, func(i, j int) bool { return found[i].CreateAt > found[j].CreateAt })
	list := model.NewPostList()
	for _, p := range found {
		list.AddPost(asStored(p))
		list.AddOrder(p.Id)
	}
	return list, nil
}

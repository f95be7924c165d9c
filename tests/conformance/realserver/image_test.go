package realserver

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"image"
	"image/color"
	"image/png"
	"strings"
	"testing"

	"claudecode/conformance/fakemodel"
	"claudecode/conformance/steps"

	"github.com/mattermost/mattermost/server/public/model"
)

// Issue 12, "pictures and files into a prompt", on the real server.

// redSquare is a PNG of a few red pixels.
func redSquare(t *testing.T) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 3, 3))
	for x := range 3 {
		for y := range 3 {
			img.Set(x, y, color.RGBA{R: 255, A: 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// zipOf is a zip archive holding one small file.
func zipOf(t *testing.T, name, text string) []byte {
	var b bytes.Buffer
	z := zip.NewWriter(&b)
	f, err := z.Create(name)
	if err == nil {
		_, err = f.Write([]byte(text))
	}
	if err == nil {
		err = z.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// A member uploads a PNG, a text file and a zip through /api/v4/files, as a client does, and
// replies in the session thread with them: the model receives the PNG as an image block with
// the same bytes and the text file as a delimited block; the member is told, by name, that the
// zip was left out.
func (w *world) stepImageIntoPrompt(t *testing.T) {
	tag := steps.RandHex(4)
	question, notes, zipName := "What is in IMG-"+tag+"?", "NOTES-"+tag+": the square is red", "bundle-"+tag+".zip"
	w.script(t, "image", fakemodel.TextTurn("A red square, "+tag+".", 0))
	picture := redSquare(t)
	upload := func(name string, data []byte) string {
		t.Helper()
		resp, _, err := w.member.client.UploadFile(w.ctx, data, w.channel.Id, name)
		if err != nil || len(resp.FileInfos) != 1 {
			t.Fatalf("uploading %s: %v", name, err)
		}
		return resp.FileInfos[0].Id
	}
	ids := model.StringArray{
		upload("square.png", picture),
		upload("notes.txt", []byte(notes+"\n")),
		upload(zipName, zipOf(t, "inside.txt", "zipped")),
	}
	before := postIDs(w.threadPosts(t))
	mark, wsMark := w.model.Mark(), w.member.mark()
	if _, _, err := w.member.client.CreatePost(w.ctx, &model.Post{ChannelId: w.channel.Id, RootId: w.rootPostID, Message: question, FileIds: ids}); err != nil {
		t.Fatal(err)
	}
	w.waitModelSaw(t, mark, turnTimeout, question, "<attached-file name=\"notes.txt\">\n"+notes, "[image: square.png]")
	sum := sha256.Sum256(picture)
	want := fakemodel.Image{MediaType: "image/png", Bytes: len(picture), SHA256: hex.EncodeToString(sum[:])}
	var got []fakemodel.Image
	for _, r := range w.model.Since(mark) {
		if strings.Contains(r.Text, question) {
			got = r.Images
			break
		}
	}
	if len(got) != 1 || got[0].MediaType != want.MediaType || got[0].Bytes != want.Bytes || got[0].SHA256 != want.SHA256 {
		t.Errorf("the model's request carried the images %+v, want one %+v", got, want)
	}
	if w.modelSaw(mark, "zipped") {
		t.Errorf("the zip's content reached the model")
	}
	w.waitDone(t, before, "the turn of the reply with files")
	said := w.member.waitEvent(wsMark, model.WebsocketEventEphemeralMessage, postTimeout, func(ev *model.WebSocketEvent) bool {
		p := postOf(ev)
		return p != nil && strings.Contains(p.Message, zipName)
	})
	if said == nil {
		t.Fatalf("the member was not told that %s was left out", zipName)
	}
	if msg := postOf(said).Message; !strings.Contains(msg, "was left out: not an image (PNG, JPEG, GIF, WebP) or a UTF-8 text file") || strings.Contains(msg, "square.png") || strings.Contains(msg, "notes.txt") {
		t.Errorf("the member was told %q", msg)
	}
}

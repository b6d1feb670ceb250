#include "web/pages.h"

namespace rw::web {
namespace {

constexpr const char* kHead = R"HTML(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>%TITLE%</title>
<style>
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.3em}table{border-collapse:collapse;width:100%;background:#fff}
th,td{text-align:left;padding:.35em .6em;border-bottom:1px solid #e3e3e3;vertical-align:top}
th{background:#f0f0f0}.bar{width:10em;height:.8em;background:#e6e6e6;border-radius:3px;overflow:hidden}
.bar>span{display:block;height:100%;background:#4a8}
.RUNNING,.PENDING{color:#06c}.COMPLETED{color:#185}.FAILED,.FAILED_TO_START,.TERMINATED,.HUNG{color:#b22}
.CANCELLED,.UNKNOWN{color:#777}pre{background:#111;color:#ddd;padding:.8em;overflow:auto;max-height:30em}
small{color:#777}a{color:#06c}
</style></head><body>
)HTML";

constexpr const char* kRuns = R"HTML(<h1>runwarden: runs</h1>
<p><small id="updated">loading...</small></p>
<table id="runs"><thead><tr><th>build</th><th>state</th><th>progress</th><th>sub-runs</th>
<th>duration</th><th>decided by</th><th>message</th></tr></thead><tbody></tbody></table>
<script>
function esc(s){return String(s==null?"":s).replace(/[&<>"']/g,c=>({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;","'":"&#39;"}[c]))}
function dur(ms){if(ms==null)return "-";let s=Math.round(ms/1000),h=Math.floor(s/3600),m=Math.floor(s%3600/60);return (h?h+"h ":"")+(h||m?m+"m ":"")+(s%60)+"s"}
function render(j){
    const rows=j.runs.map(x=>{
      const pct=x.stages_total?Math.round(100*x.stages_done/x.stages_total):0;
      const subs=(x.subruns||[]).map(s=>'<span class="'+esc(s.status)+'">'+esc(s.key)+"</span>").join(" ");
      return '<tr data-build="'+esc(x.build)+'"><td><a href="/runs/'+encodeURIComponent(x.build)+'">'+esc(x.build)+"</a></td>"+
        '<td class="'+esc(x.status)+'">'+esc(x.status)+"</td>"+
        '<td><div class="bar" title="'+esc(x.progress)+'"><span class="fill" style="width:'+pct+'%"></span></div>'+
        '<small class="stages">'+esc(x.stages_done)+"/"+esc(x.stages_total)+" stages</small></td>"+
        "<td>"+subs+"</td><td>"+dur(x.duration_ms)+"</td><td>"+esc(x.decided_by)+"</td><td>"+esc(x.message)+"</td></tr>"});
    document.querySelector("#runs tbody").innerHTML=rows.join("");
    document.getElementById("updated").textContent=j.total+" runs, updated "+new Date().toLocaleTimeString();
}
async function load(){
  try{const r=await fetch("/api/v1/runs?limit=1000");render(await r.json())}
  catch(e){document.getElementById("updated").textContent="cannot reach the server: "+e}
}
// Live: Server-Sent Events; polling every 2 s where they do not get through
// (or with ?poll, e.g. behind a proxy that buffers event streams).
// document.body.dataset.live says which is in use: "events" or "poll".
function poll(){document.body.dataset.live="poll";load();setInterval(load,2000)}
if(window.EventSource&&!new URLSearchParams(location.search).has("poll")){const es=new EventSource("/api/v1/events");
  es.onmessage=e=>{document.body.dataset.live="events";render(JSON.parse(e.data))};
  es.onerror=()=>{es.close();poll()}}
else poll()
</script></body></html>
)HTML";

constexpr const char* kRun = R"HTML(<p><a href="/">all runs</a></p>
<h1>run <span id="build">%BUILD%</span>: <span id="status"></span></h1>
<p id="summary"></p>
<table id="tasks"><thead><tr><th>stage</th><th>task</th><th>target</th><th>state</th><th>attempts</th>
<th>duration</th><th>exit</th><th>reason</th></tr></thead><tbody></tbody></table>
<div id="testbed" hidden><h2>testbed guests <small id="testbed-uri"></small></h2>
<table id="guests"><thead><tr><th>guest</th><th>domain</th><th>addresses</th><th>state</th></tr></thead><tbody></tbody></table></div>
<h2>sub-runs</h2><p id="subruns">-</p>
<h2>log <small>(runner.log, last 100 lines)</small></h2><pre id="log"></pre>
<script>
const build=document.getElementById("build").textContent;
function esc(s){return String(s==null?"":s).replace(/[&<>"']/g,c=>({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;","'":"&#39;"}[c]))}
function dur(a,b){if(!a)return "-";const ms=(b||Date.now())-a;let s=Math.round(ms/1000);return Math.floor(s/60)+"m "+(s%60)+"s"}
function render(j,log){
  const st=document.getElementById("status");st.textContent=j.status;st.className=j.status;
  document.getElementById("summary").textContent=(j.progress||"")+(j.reason?" - "+j.reason:"")+" (message: "+j.message+")";
  const rows=[];
  for(const s of (j.stages||[]))for(const t of s.tasks)
    rows.push('<tr class="task"><td>'+esc(s.name)+"</td><td>"+esc(t.name)+"</td><td>"+esc(t.target)+'</td><td class="'+esc(t.status)+'">'+
      esc(t.status)+"</td><td>"+esc(t.attempts)+"</td><td>"+dur(t.started_at_ms,t.ended_at_ms)+"</td><td>"+esc(t.exit_code)+"</td><td>"+esc(t.reason)+"</td></tr>");
  document.querySelector("#tasks tbody").innerHTML=rows.join("");
  const tb=j.testbed;document.getElementById("testbed").hidden=!tb;
  if(tb){document.getElementById("testbed-uri").textContent="("+tb.uri+", recorded "+(tb.updated_at||"-")+")";
    document.querySelector("#guests tbody").innerHTML=tb.guests.map(g=>'<tr class="guest"><td>'+esc(g.name)+"</td><td>"+esc(g.libvirt_name)+
      "</td><td>"+esc((g.addresses||[]).join(", "))+'</td><td class="guest-'+esc(g.state)+'">'+esc(g.state)+"</td></tr>").join("")}
  document.getElementById("subruns").innerHTML=(j.subruns||[]).map(s=>esc(s.key)+': <span class="'+esc(s.status)+'">'+esc(s.status)+"</span> ("+esc(s.message)+")").join(", ")||"-";
  document.getElementById("log").textContent=log;
}
async function load(){
  const r=await fetch("/api/v1/runs/"+encodeURIComponent(build));const j=await r.json();
  const l=await fetch("/api/v1/runs/"+encodeURIComponent(build)+"/log?tail=100");
  render(j,await l.text());
}
function poll(){document.body.dataset.live="poll";load();setInterval(load,2000)}
if(window.EventSource&&!new URLSearchParams(location.search).has("poll")){const es=new EventSource("/api/v1/runs/"+encodeURIComponent(build)+"/events");
  es.onmessage=e=>{document.body.dataset.live="events";const d=JSON.parse(e.data);render(d.run,d.log)};
  es.onerror=()=>{es.close();poll()}}
else poll()
</script></body></html>
)HTML";

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) s.replace(p, from.size(), to);
  return s;
}

}  // namespace

std::string runs_page() { return replace_all(kHead, "%TITLE%", "runwarden: runs") + kRuns; }

std::string run_page(const std::string& build) {
  // A valid build name has no markup characters; the page escapes anyway.
  std::string safe;
  for (char c : build)
    safe += (c == '<' || c == '>' || c == '&' || c == '"' || c == '\'') ? '_' : c;
  return replace_all(kHead, "%TITLE%", "runwarden: " + safe) + replace_all(kRun, "%BUILD%", safe);
}

}  // namespace rw::web

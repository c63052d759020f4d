"""The web page at ``/``: plain HTML/JS, no build step; it calls the API the way the document's JavaScript does."""

from __future__ import annotations

__all__ = ["PAGE"]

PAGE = """<!doctype html>
<html lang="zh"><head><meta charset="utf-8"><title>即梦 AI 图像生成</title>
<style>
@font-face{font-family:VolcnbSansSC;src:url(font.ttf);font-weight:100 900;unicode-range:U+2E80-FFFF}
body{font-family:VolcnbSansSC,sans-serif;max-width:860px;margin:2em auto;padding:0 1em;color:#222}
textarea,input,select,button{font-family:inherit} textarea{width:100%;height:5em} label{margin-right:1em} #status{margin:1em 0;font-weight:bold}
#error{color:#b00020} img#image{max-width:512px;border:1px solid #ccc;display:none}
table{border-collapse:collapse;width:100%} td,th{border-bottom:1px solid #ddd;padding:4px;text-align:left;font-size:90%}
</style></head><body>
<h1>即梦 AI 图像生成</h1>
<form id="form">
<p><textarea id="prompt" placeholder="图像描述 prompt"></textarea></p>
<p><label>用户 user_id <input id="user" value="user_123"></label>
<label>尺寸 <select id="size"><option>256x256</option><option>512x512</option><option selected>1024x1024</option>
<option>1024x1792</option><option>1792x1024</option></select></label>
<label>质量 <select id="quality"><option>standard</option><option>hd</option></select></label>
<label>风格 <select id="style"><option value="">(无)</option><option>natural</option><option>anime</option>
<option>cyberpunk</option><option>realistic</option></select></label>
<label>令牌 <input id="token" size="8" placeholder="(可选)"></label></p>
<p><button id="go" type="submit">生成</button></p></form>
<div id="status"></div><div id="error"></div><img id="image" alt="生成的图像">
<h2>最近的任务</h2><table><thead><tr><th>任务</th><th>状态</th><th>描述</th></tr></thead><tbody id="recent"></tbody></table>
<script>
const $ = id => document.getElementById(id);
function headers() {
  const h = {'Content-Type': 'application/json'}; const t = $('token').value.trim();
  if (t) h['Authorization'] = 'Bearer ' + t; return h;
}
async function createImageTask(prompt, userId) {
  const body = {prompt: prompt, user_id: userId, model: 'doubao-seedream-3.0-t2i',
                size: $('size').value, quality: $('quality').value};
  if ($('style').value) body.style = $('style').value;
  const response = await fetch('api/v1/ai/image/task', {method: 'POST', headers: headers(), body: JSON.stringify(body)});
  const result = await response.json();
  if (response.status !== 201) throw new Error((result.error || response.status) + ': ' + (result.message || ''));
  return result.data.task_id;
}
async function pollTaskResult(taskId, maxAttempts = 200) {
  for (let i = 0; i < maxAttempts; i++) {
    const response = await fetch('api/v1/ai/image/result/' + encodeURIComponent(taskId), {headers: headers()});
    const result = await response.json();
    if (result.data && result.data.status === 'completed') return result.data.result.image_url;
    if (result.data && result.data.status === 'failed') throw new Error('任务失败: ' + result.message);
    if (!result.data) throw new Error(result.error + ': ' + (result.message || ''));
    $('status').textContent = '任务 ' + taskId + ': ' + result.data.status;
    await new Promise(resolve => setTimeout(resolve, 2000));
  }
  throw new Error('任务超时');
}
async function recent() {
  const user = $('user').value.trim(); if (!user) return;
  const r = await fetch('api/v1/users/' + encodeURIComponent(user) + '/tasks', {headers: headers()});
  if (!r.ok) return;
  const rows = (await r.json()).data; const tb = $('recent'); tb.textContent = '';
  for (const t of rows) {
    const tr = document.createElement('tr');
    for (const v of [t.task_id, t.status, t.prompt]) { const td = document.createElement('td'); td.textContent = v; tr.appendChild(td); }
    tb.appendChild(tr);
  }
}
$('form').addEventListener('submit', async ev => {
  ev.preventDefault(); $('error').textContent = ''; $('image').style.display = 'none';
  try {
    const taskId = await createImageTask($('prompt').value, $('user').value);
    $('status').textContent = '任务 ' + taskId + ': pending'; recent();
    const url = await pollTaskResult(taskId);
    $('image').src = url; $('image').style.display = 'block';
    $('status').textContent = '任务 ' + taskId + ': completed';
  } catch (err) { $('error').textContent = err.message; $('status').textContent = ''; }
  recent();
});
recent();
</script></body></html>
"""

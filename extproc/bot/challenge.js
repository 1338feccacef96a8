// The bot challenge page's script (extproc/bot/challenge.py serves it inline). It looks at the
// browser it runs in, solves the proof of work, and reports both in one request header to the
// page's own URL, which the sidecar answers itself; a clearance cookie comes back and the page
// reloads. What it reports is judged by the sidecar (extproc/bot/probe.py), never here.
(function () {
  "use strict";
  var conf = JSON.parse(document.getElementById("extproc-challenge").textContent);
  var status = document.getElementById("status");
  var ARTEFACT = /^(\$?cdc_|\$wdc_|__webdriver|__selenium|__fxdriver|__driver_|_selenium|_Selenium_IDE|callSelenium|__nightmare|_phantom|callPhantom|__playwright|__pw_|__puppeteer|domAutomation)/;

  function automationArtefacts() {
    var found = [];
    [window, document].forEach(function (scope) {
      Object.getOwnPropertyNames(scope).forEach(function (name) {
        if (ARTEFACT.test(name)) found.push(name);
      });
    });
    document.documentElement.getAttributeNames().forEach(function (name) {
      if (/selenium|webdriver|driver/i.test(name)) found.push("@" + name);
    });
    return found.slice(0, 8);
  }

  // A DevTools-protocol client with the Runtime domain enabled (every automation driver) gets
  // each console message serialised for it, which reads an Error's stack; nothing else does.
  function devtoolsProtocol() {
    var read = false;
    var bait = new Error("");
    Object.defineProperty(bait, "stack", { configurable: true, get: function () { read = true; return ""; } });
    console.debug(bait);
    return read;
  }

  function headlessTraits(ua) {
    var traits = [];
    if (/HeadlessChrome/.test(ua)) traits.push("headless-ua");
    if (window.outerWidth === 0 && window.outerHeight === 0) traits.push("no-window");
    if (!navigator.languages || navigator.languages.length === 0) traits.push("no-languages");
    if (/Chrome\//.test(ua) && !/; wv\)/.test(ua) && typeof window.chrome !== "object") traits.push("no-chrome-object");
    return traits;
  }

  function hints() {
    var data = navigator.userAgentData;
    if (!data) return null;
    return { b: data.brands.map(function (b) { return b.brand; }), m: data.mobile, p: data.platform };
  }

  function signals() {
    var ua = navigator.userAgent;
    return { wd: navigator.webdriver, art: automationArtefacts(), cdp: devtoolsProtocol(), ua: ua,
             pf: navigator.platform, uad: hints(), hl: headlessTraits(ua) };
  }

  // SHA-256 in plain JavaScript, for pages served over plain HTTP (no crypto.subtle there).
  var K = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2];
  var H0 = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

  function sha256(bytes) {
    var length = bytes.length, blocks = ((length + 9 + 63) >> 6) << 4;
    var words = new Array(blocks).fill(0);
    for (var i = 0; i < length; i++) words[i >> 2] |= bytes[i] << (24 - (i % 4) * 8);
    words[length >> 2] |= 0x80 << (24 - (length % 4) * 8);
    words[blocks - 1] = length * 8;
    var h = H0.slice(), w = new Array(64);
    for (var block = 0; block < blocks; block += 16) {
      for (var t = 0; t < 64; t++) {
        if (t < 16) { w[t] = words[block + t]; continue; }
        var a = w[t - 15], b = w[t - 2];
        var s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
        var s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
        w[t] = (w[t - 16] + s0 + w[t - 7] + s1) | 0;
      }
      var v = h.slice();
      for (t = 0; t < 64; t++) {
        var e = v[4], x = v[0];
        var t1 = (v[7] + (((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))) +
                  ((e & v[5]) ^ (~e & v[6])) + K[t] + w[t]) | 0;
        var t2 = ((((x >>> 2) | (x << 30)) ^ ((x >>> 13) | (x << 19)) ^ ((x >>> 22) | (x << 10))) +
                  ((x & v[1]) ^ (x & v[2]) ^ (v[1] & v[2]))) | 0;
        v = [(t1 + t2) | 0, x, v[1], v[2], (v[3] + t1) | 0, e, v[5], v[6]];
      }
      for (t = 0; t < 8; t++) h[t] = (h[t] + v[t]) | 0;
    }
    var out = new Uint8Array(32);
    for (t = 0; t < 32; t++) out[t] = (h[t >> 2] >>> (24 - (t % 4) * 8)) & 255;
    return out;
  }

  function zeroBits(digest) {
    var bits = 0;
    for (var i = 0; i < digest.length; i++) {
      if (digest[i] === 0) { bits += 8; continue; }
      return bits + Math.clz32(digest[i]) - 24;
    }
    return bits;
  }

  // The smallest counter whose SHA-256("nonce:counter") starts with `bits` zero bits.
  async function solve(nonce, bits) {
    if (!bits) return 0;
    var encoder = new TextEncoder(), subtle = window.crypto && window.crypto.subtle, batch = 256;
    for (var start = 0; ; start += batch) {
      var inputs = [];
      for (var c = start; c < start + batch; c++) inputs.push(encoder.encode(nonce + ":" + c));
      var digests = subtle
        ? await Promise.all(inputs.map(function (data) { return subtle.digest("SHA-256", data); }))
        : inputs.map(sha256);
      for (var i = 0; i < batch; i++) {
        if (zeroBits(new Uint8Array(digests[i])) >= bits) return start + i;
      }
      if (!subtle) await new Promise(function (resolve) { setTimeout(resolve, 0); });
    }
  }

  function encode(report) {
    var bytes = new TextEncoder().encode(JSON.stringify(report)), text = "";
    for (var i = 0; i < bytes.length; i++) text += String.fromCharCode(bytes[i]);
    return btoa(text);
  }

  async function run() {
    var seen = signals();
    var counter = await solve(conf.n, conf.d);
    var headers = {};
    headers[conf.h] = encode({ n: conf.n, c: counter, s: seen });
    var answer = await fetch(location.pathname + location.search,
                             { method: "POST", headers: headers, credentials: "same-origin", cache: "no-store" });
    if (answer.ok) {
      status.textContent = "Done. Loading the page.";
      location.replace(location.href);
    } else {
      status.textContent = "Your browser could not be verified. Reload the page to try again.";
    }
  }

  run().catch(function () {
    status.textContent = "Your browser could not be verified. Reload the page to try again.";
  });
})();

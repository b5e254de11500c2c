// taskstream web UI: live updates, reminders as in-page and desktop notifications, keyboard
// shortcuts. Everything here is an enhancement: every page works without it.
(function () {
  "use strict";

  function typing(target) {
    return target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }

  // Keyboard shortcuts: n new, / search, c assistant, ? help.
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    var quick = document.getElementById("quick-add");
    var search = document.getElementById("search");
    if (event.key === "n") {
      event.preventDefault();
      if (quick) quick.focus(); else location.href = "/tasks/new";
    } else if (event.key === "/") {
      event.preventDefault();
      if (search) search.focus(); else location.href = "/?focus=search";
    } else if (event.key === "c") {
      location.href = "/chat";
    } else if (event.key === "?") {
      var help = document.getElementById("help");
      if (help && help.showModal) help.showModal();
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    // Sign-up: the new account starts in this browser's time zone (changeable in Settings).
    var zone = document.getElementById("time-zone");
    if (zone && !zone.value && window.Intl && Intl.DateTimeFormat) {
      try { zone.value = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (error) { /* stays UTC */ }
    }
    if (location.search.indexOf("focus=search") >= 0) {
      var search = document.getElementById("search");
      if (search) search.focus();
    }
    var log = document.getElementById("chat-log");
    if (log) log.lastElementChild && log.lastElementChild.scrollIntoView({ block: "end" });
    setUpDesktopNotifications();
    listen();
  });

  // After the assistant answers, clear the box and show the newest message.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "chat-log") {
      var input = document.getElementById("chat-input");
      if (input) { input.value = ""; input.focus(); }
      var end = document.getElementById("end");
      if (end) end.scrollIntoView({ block: "end" });
      refreshTasks();
    }
  });

  function setUpDesktopNotifications() {
    var state = document.getElementById("browser-notify-state");
    var button = document.getElementById("enable-browser-notifications");
    if (!("Notification" in window)) { if (state) state.textContent = "not supported by this browser"; return; }
    if (Notification.permission === "granted") { if (state) state.textContent = "on in this browser"; return; }
    if (Notification.permission === "denied") { if (state) state.textContent = "blocked in this browser's settings"; return; }
    if (button) {
      button.hidden = false;
      if (state) state.textContent = "";
      button.addEventListener("click", function () {
        Notification.requestPermission().then(function () { setUpDesktopNotifications(); if (Notification.permission === "granted") button.hidden = true; });
      });
    }
  }

  function toast(text) {
    var region = document.getElementById("toasts");
    if (!region) return;
    var item = document.createElement("div");
    item.className = "toast";
    item.setAttribute("role", "alert");
    item.textContent = text;
    region.appendChild(item);
    setTimeout(function () { item.remove(); }, 15000);
  }

  var refreshTimer = null;
  // Re-reads the task list the page shows (same URL, same filters) when tasks change elsewhere.
  function refreshTasks() {
    if (!document.getElementById("task-list") || !window.htmx) return;
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(function () {
      var active = document.activeElement;
      if (active && active.closest && active.closest("#task-list")) return;
      window.htmx.ajax("GET", location.pathname + location.search, { target: "#task-list", select: "#task-list", swap: "outerHTML" });
    }, 250);
  }

  function listen() {
    if (!window.EventSource || !document.getElementById("bell-slot")) return;
    var source = new EventSource("/api/events");
    // Close the stream when the page goes away: a browser allows only a few connections per
    // server, and streams left open by earlier pages would hold back the next form post.
    window.addEventListener("pagehide", function () { source.close(); });
    source.onmessage = function (message) {
      var event;
      try { event = JSON.parse(message.data); } catch (error) { return; }
      if (event.event_type === "reminder.triggered") {
        var title = (event.payload && event.payload.task_title) || "a task";
        var text = "Reminder: " + title;
        toast(text);
        // The bell counts stored notifications, which the notification consumer writes from
        // the same event this stream carries; it may land a moment after. Ask again shortly.
        document.body.dispatchEvent(new CustomEvent("taskstream:notification"));
        setTimeout(function () {
          document.body.dispatchEvent(new CustomEvent("taskstream:notification"));
        }, 1500);
        if ("Notification" in window && Notification.permission === "granted") {
          try { new Notification("taskstream", { body: text, tag: event.event_id }); } catch (error) { /* some browsers only allow this from a service worker */ }
        }
      } else {
        refreshTasks();
      }
    };
  }
})();

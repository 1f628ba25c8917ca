/* The course book's fixes to sphinx-book-theme 1.3 (see _config.yml's html_js_files).
 *
 * The theme draws two buttons for the chapter sidebar and two for "On this page" (one in the
 * top bar, one in the article header), but the themes listen to the first of each only:
 * pydata-sphinx-theme opens the sidebar as a dialog below 992 px, and sphinx-book-theme's
 * capture-phase handler collapses the sidebar (class pst-sidebar-hidden) at 992 px and wider.
 * Below 992 px and for the desktop collapse button that first one is hidden, so the visible
 * one did nothing. Forward its click to the one that works, which then does whichever of the
 * two the width calls for; tests/test_browser.py clicks both at 390 px and 1366 px.
 */
document.addEventListener("DOMContentLoaded", function () {
  ["primary-toggle", "secondary-toggle"].forEach(function (name) {
    var toggles = document.querySelectorAll("button." + name);
    for (var i = 1; i < toggles.length; i++) {
      toggles[i].addEventListener("click", function (event) {
        event.preventDefault();
        event.stopPropagation();
        this.blur(); // as the theme does for its own button: a focused button keeps its tooltip
        toggles[0].click();
      });
    }
  });
});

/* The course book's fixes to sphinx-book-theme 1.3 (see _config.yml's html_js_files).
 *
 * The theme draws two buttons for the chapter sidebar and two for "On this page" (one in the
 * top bar, one in the article header), but pydata-sphinx-theme listens to the first of each
 * only. Below 992 px and for the desktop collapse button that first one is hidden, so the
 * visible one did nothing. Forward its click to the one that works.
 */
document.addEventListener("DOMContentLoaded", function () {
  ["primary-toggle", "secondary-toggle"].forEach(function (name) {
    var toggles = document.querySelectorAll("button." + name);
    for (var i = 1; i < toggles.length; i++) {
      toggles[i].addEventListener("click", function (event) {
        event.preventDefault();
        event.stopPropagation();
        toggles[0].click();
      });
    }
  });
});

"""What people read: terminal tables (:mod:`.render`, rich: ``pmengine[cli]``),
the body of each ``pmengine`` subcommand (:mod:`.commands`) and the HTML report
(:mod:`.report`, matplotlib: ``pmengine[plot]``).

Presentation imports computation, never the reverse: nothing outside this
package and the command line imports it.
"""

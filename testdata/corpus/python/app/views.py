from flask import Flask, request, render_template, render_template_string, jsonify
from flask_cors import CORS
import ast
import jinja2

app = Flask(__name__)
CORS(app, supports_credentials=True)

GREETING = jinja2.Template("Hello {{ name }}!")


@app.route("/hello")
def hello():
    name = request.args.get("name", "world")
    return render_template_string("<h1>Hello " + name + "</h1>")


@app.route("/hello2")
def hello2():
    return render_template("hello.html", name=request.args.get("name"))


@app.route("/preview", methods=["POST"])
def preview():
    tpl = request.form["template"]
    return render_template_string(tpl, user=current_user())


@app.route("/calc")
def calc():
    expr = request.args["q"]
    return jsonify(result=eval(expr))


@app.route("/parse")
def parse():
    return jsonify(value=ast.literal_eval(request.args["v"]))


@app.route("/run-hook", methods=["POST"])
def run_hook():
    code = request.get_data(as_text=True)
    exec(compile(code, "<hook>", "exec"))
    return "", 204


def current_user():
    return {"name": "anonymous"}


if __name__ == "__main__":
    app.run(host="0.0.0.0", port=5000, debug=True)
